codes_root = 'work_dirs/shipped/codes/vq/train'
custom_hooks = [
    dict(begin_iter=200, momentum=0.01, type='EMAHook'),
]
default_hooks = dict(
    checkpoint=dict(
        by_epoch=False,
        interval=1000,
        max_keep_ckpts=1,
        save_last=True,
        type='CheckpointHook'),
    logger=dict(interval=50, type='LoggerHook'),
    non_finite=dict(
        max_consecutive=10, policy='skip', type='NonFiniteGuardHook'),
    param_scheduler=dict(type='ParamSchedulerHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    timer=dict(type='IterTimerHook'))
default_scope = 'fqzoo'
env_cfg = dict(
    cudnn_benchmark=False,
    dist_cfg=dict(backend='nccl'),
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0))
load_from = None
log_level = 'INFO'
log_processor = dict(by_epoch=False, type='LogProcessor', window_size=50)
max_iters = 1000
model = dict(
    backbone=dict(
        ffn_dropout=0.1,
        num_heads=4,
        num_layers=5,
        resid_dropout=0.1,
        token_dropout=0.1,
        type='LlamaGenBackbone',
        width=128),
    class_dropout=0.1,
    codebook_sizes=[
        512,
    ],
    grid_size=[
        8,
        8,
    ],
    head=dict(type='ParallelLinearHead'),
    num_classes=10,
    tokens=None,
    type='AutoregressiveGenerator')
model_wrapper_cfg = dict(
    broadcast_buffers=False,
    find_unused_parameters=False,
    type='MMDistributedDataParallel')
optim_wrapper = dict(
    clip_grad=dict(max_norm=1.0),
    optimizer=dict(
        betas=(
            0.9,
            0.95,
        ), lr=0.001, type='AdamW', weight_decay=0.05),
    paramwise_cfg=dict(flat_decay_mult=0.0),
    type='OptimWrapper')
param_scheduler = [
    dict(begin=0, by_epoch=False, end=100, start_factor=0.01, type='LinearLR'),
    dict(
        T_max=900,
        begin=100,
        by_epoch=False,
        end=1000,
        eta_min=1e-05,
        type='CosineAnnealingLR'),
]
randomness = dict(deterministic=False, seed=0)
resume = False
runner_type = 'TokenizerRunner'
test_cfg = dict(type='TestLoop')
test_codes_root = 'work_dirs/shipped/codes/vq/test'
test_dataloader = dict(
    batch_size=250,
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        data_root='work_dirs/shipped/codes/vq/test', type='CodeDataset'),
    num_workers=0,
    sampler=dict(shuffle=False, type='DefaultSampler'))
test_evaluator = dict(type='TokenNLL')
train_cfg = dict(max_iters=1000, type='IterBasedTrainLoop', val_interval=1000)
train_dataloader = dict(
    batch_size=32,
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        data_root='work_dirs/shipped/codes/vq/train', type='CodeDataset'),
    num_workers=0,
    sampler=dict(shuffle=True, type='InfiniteSampler'))
val_cfg = None
val_dataloader = None
val_evaluator = None
vis_backends = [
    dict(type='LocalVisBackend'),
    dict(type='TensorboardVisBackend'),
]
visualizer = dict(
    name='visualizer',
    type='Visualizer',
    vis_backends=[
        dict(type='LocalVisBackend'),
        dict(type='TensorboardVisBackend'),
    ])
