# The tokenizer schedule of LlamaGen / FQGAN: Adam lr 1e-4 ... 2e-4,
# betas (0.9, 0.95), constant lr, iteration based.
max_iters = 400000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    constructor='TokenizerOptimWrapperConstructor',
    autoencoder=dict(type='OptimWrapper',
                     optimizer=dict(type='Adam', lr=1e-4, betas=(0.9, 0.95))),
    discriminator=dict(type='OptimWrapper',
                       optimizer=dict(type='Adam', lr=1e-4, betas=(0.9, 0.95))),
)
param_scheduler = []
