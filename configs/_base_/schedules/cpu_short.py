# A short CPU schedule for the quickstart and the ablations: Adam at 3e-4,
# cosine to 3e-5 (at 1e-3 the CPU trunk, then with per-position norms,
# collapsed the codebook, docs/cpu_recipe.md). The discriminator entry is used
# only by a config that adds a discriminator.
max_iters = 1500
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=500)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    constructor='TokenizerOptimWrapperConstructor',
    autoencoder=dict(type='OptimWrapper',
                     optimizer=dict(type='Adam', lr=3e-4, betas=(0.9, 0.95))),
    discriminator=dict(type='OptimWrapper',
                       optimizer=dict(type='Adam', lr=3e-4, betas=(0.9, 0.95))),
)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=max_iters, eta_min=3e-5,
                        by_epoch=False, begin=0, end=max_iters)]
