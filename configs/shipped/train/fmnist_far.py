# Training recipe of the shipped `fqzoo-fmnist-far` generator: the FAR of
# docs/generation.md (configs/far/far_tiny_fmnist.py: width 128, 4 layers,
# factorized AR head of one block) on the shipped FQ-2 tokenizer's codes of
# the first 20000 training images, 1000 iterations at batch 32 (1.6 passes
# over them; docs/generation.md: 2000 iterations on all 60000), warm-up 100,
# cosine after it. tools/train_shipped_models.py extracts the codes first
# (and those of the first 2000 test images, for the held-out NLL).
_base_ = ['../../far/far_tiny_fmnist.py']

codes_root = 'work_dirs/shipped/codes/fq2/train'
test_codes_root = 'work_dirs/shipped/codes/fq2/test'
model = dict(tokens=codes_root)
train_dataloader = dict(dataset=dict(data_root=codes_root))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = dict(dataset=dict(data_root=test_codes_root))
max_iters = 1000
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', T_max=max_iters - 100, eta_min=1e-5,
         by_epoch=False, begin=100, end=max_iters),
]
custom_hooks = [dict(type='EMAHook', momentum=0.01, begin_iter=200)]
default_hooks = dict(checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
