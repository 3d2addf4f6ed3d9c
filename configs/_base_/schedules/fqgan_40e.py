# The released FQGAN training recipe on ImageNet 256: Adam lr 2e-4, betas
# (0.9, 0.95), batch 256 = 8 GPUs x 32 (the ImageNet base), 40 epochs (40 x 5004 iterations);
# the discriminator starts at iteration 20000 (model.disc_start).
_base_ = ['./adam_400k.py']
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
