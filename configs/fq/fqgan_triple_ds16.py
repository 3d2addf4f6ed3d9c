# FQGAN-Triple, downsample 16, (Bai et al. 2024) on ImageNet 256: the released
# training recipe: Adam lr 2e-4, betas (0.9, 0.95), batch 256 = 8 GPUs x 32,
# 40 epochs (40 x 5004 iterations), discriminator from iteration 20000.
_base_ = [
    '../_base_/models/fqgan_triple_ds16.py',
    '../_base_/datasets/imagenet.py',
    '../_base_/evaluation/paper_metrics.py',
    '../_base_/schedules/adam_400k.py',
    '../_base_/default_runtime.py',
]
train_dataloader = dict(batch_size=32)
max_iters = 40 * 5004
train_cfg = dict(max_iters=max_iters)
optim_wrapper = dict(
    autoencoder=dict(optimizer=dict(lr=2e-4)),
    discriminator=dict(optimizer=dict(lr=2e-4)),
)
custom_hooks = [
    dict(type='ReconstructionGridHook', interval=5000, num_samples=8),
    dict(type='CodebookHealthHook', interval=1000, usage_floor=0.05),
]
