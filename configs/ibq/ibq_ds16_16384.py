# IBQ-16384, downsample 16, on ImageNet 256 (released: rFID 1.37, usage 96%,
# docs/IBQ.md of TencentARC/SEED-Voken): Adam lr 1e-4, betas (0.5, 0.9),
# batch 256 (64 GPUs x 4 in the release, 8 x 32 here).
_base_ = [
    '../_base_/models/ibq_ds16.py',
    '../_base_/datasets/imagenet.py',
    '../_base_/evaluation/paper_metrics.py',
    '../_base_/schedules/adam_400k.py',
    '../_base_/default_runtime.py',
]
optim_wrapper = dict(
    autoencoder=dict(optimizer=dict(lr=1e-4, betas=(0.5, 0.9))),
    discriminator=dict(optimizer=dict(lr=1e-4, betas=(0.5, 0.9))),
)
custom_hooks = [
    dict(type='ReconstructionGridHook', interval=5000, num_samples=8),
    dict(type='CodebookHealthHook', interval=1000, usage_floor=0.05),
]
