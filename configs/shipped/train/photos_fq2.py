# Training recipe of the shipped `fqzoo-photos-fq2` tokenizer: the
# `make quickstart` tokenizer (configs/quickstart/fq2_effnet_tiny_photos.py,
# FQ-2 with 2 x 512 codes on 32x32 patches of the bundled photos) on a
# shorter schedule, 1000 iterations at batch 16 (the quickstart: 2500), the
# cosine over all of them; no validation during training
# (tools/train_shipped_models.py measures the exported weights).
_base_ = ['../../quickstart/fq2_effnet_tiny_photos.py']

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
