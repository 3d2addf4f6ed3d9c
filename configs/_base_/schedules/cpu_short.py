# A short CPU schedule for the quickstart and the ablations.
max_iters = 1500
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=500)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    constructor='TokenizerOptimWrapperConstructor',
    autoencoder=dict(type='OptimWrapper',
                     optimizer=dict(type='Adam', lr=1e-3, betas=(0.9, 0.95))),
    discriminator=dict(type='OptimWrapper',
                       optimizer=dict(type='Adam', lr=1e-3, betas=(0.9, 0.95))),
)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=max_iters, eta_min=1e-4,
                        by_epoch=False, begin=0, end=max_iters)]
