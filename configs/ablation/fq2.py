# FQ-2: two 512-code sub-codebooks, disentanglement 0.1, EfficientNet teacher
# on branch 1 (the quickstart tokenizer).
_base_ = ['../quickstart/fq2_effnet_tiny_photos.py']

# The trunk the runs in docs/{ablations,generation}.md used: per-position
# norms (the quickstart has since dropped them, docs/cpu_recipe.md).
model = dict(encoder=dict(norm='pixel'), decoder=dict(norm='pixel'),
             heads=dict(norm='pixel'))

# The 1500-iteration schedule of cpu_short.py, not the quickstart's 2500: the
# runs in docs/{ablations,generation}.md used it.
max_iters = 1500
train_cfg = dict(max_iters=max_iters)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=max_iters, eta_min=3e-5,
                        by_epoch=False, begin=0, end=max_iters)]
