# Training recipe of the shipped `fqzoo-fmnist-fq2` tokenizer: the FQ-2
# tokenizer of docs/generation.md (configs/fq/fq2_tiny_fmnist.py) on a
# shorter schedule, 1000 iterations at batch 16 (docs/generation.md: 1500),
# the cosine over all of them; no validation during training
# (tools/train_shipped_models.py measures the exported weights).
_base_ = ['../../fq/fq2_tiny_fmnist.py']

max_iters = 1000
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=max_iters, eta_min=3e-5,
                        by_epoch=False, begin=0, end=max_iters)]
val_dataloader = None
val_cfg = None
val_evaluator = None
custom_hooks = [
    dict(type='CodebookHealthHook', interval=100, usage_floor=0.05,
         restart=True),
]
default_hooks = dict(checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
