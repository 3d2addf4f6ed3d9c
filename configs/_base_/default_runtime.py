default_scope = 'fqzoo'
# fqzoo's Runner: checkpoints hold only tensors and plain values and load with
# torch.load(weights_only=True).
runner_type = 'TokenizerRunner'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=5000, by_epoch=False,
                    max_keep_ckpts=3, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # skip updates whose loss or gradients are NaN/Inf; stop (with a
    # checkpoint) after 10 such iterations in a row. None turns it off.
    non_finite=dict(type='NonFiniteGuardHook', policy='skip',
                    max_consecutive=10),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py and tools/test.py switch to 'gloo' on CPU-only machines.
    dist_cfg=dict(backend='nccl'),
)
# GAN tokenizers override train_step; plain MMDistributedDataParallel never
# calls it. MMSeparateDistributedDataParallel wraps each trainable submodule
# in its own DDP instead; fqzoo's subclass also wraps the elements of
# ModuleList children (quant_convs, regularizers), which MMEngine's would
# turn into DDP objects that cannot be iterated.
model_wrapper_cfg = dict(type='TokenizerDistributedDataParallel',
                         broadcast_buffers=False, find_unused_parameters=False)

vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
