crop_size = 32
custom_hooks = [
    dict(
        interval=100,
        restart=True,
        type='CodebookHealthHook',
        usage_floor=0.05),
]
dataset_type = 'BundledPhotoPatches'
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
    decoder=dict(
        attention=False,
        ch=32,
        ch_mult=(
            1,
            2,
            2,
        ),
        norm='none',
        num_res_blocks=1,
        type='VQGANDecoder',
        z_channels=32),
    encoder=dict(
        attention=False,
        ch=32,
        ch_mult=(
            1,
            2,
            2,
        ),
        norm='none',
        num_res_blocks=1,
        type='VQGANEncoder',
        z_channels=32),
    heads=dict(
        in_channels=32, norm='none', num_blocks=1, type='ConvBranchHead'),
    quantizer=dict(
        num_codebooks=2,
        quantizer=dict(
            beta=0.25,
            codebook_size=512,
            embed_dim=8,
            l2_norm=True,
            type='VectorQuantizer'),
        type='FactorizedQuantizer'),
    rec_loss='l2',
    regularizers=[
        dict(type='DisentanglementRegularizer', weight=0.1),
        dict(
            branch=1,
            head=dict(
                grid_size=8,
                in_channels=8,
                num_heads=4,
                num_layers=1,
                out_channels=1280,
                type='FeaturePredictionHead',
                width=64),
            loss='infonce',
            teacher=dict(
                img_size=64, pretrained=False, type='EfficientNetTeacher'),
            type='SemanticRegularizer',
            weight=0.1),
    ],
    type='ImageTokenizer')
model_wrapper_cfg = dict(
    broadcast_buffers=False,
    find_unused_parameters=False,
    type='TokenizerDistributedDataParallel')
optim_wrapper = dict(
    autoencoder=dict(
        optimizer=dict(betas=(
            0.9,
            0.95,
        ), lr=0.0003, type='Adam'),
        type='OptimWrapper'),
    constructor='TokenizerOptimWrapperConstructor',
    discriminator=dict(
        optimizer=dict(betas=(
            0.9,
            0.95,
        ), lr=0.0003, type='Adam'),
        type='OptimWrapper'))
param_scheduler = [
    dict(
        T_max=1000,
        begin=0,
        by_epoch=False,
        end=1000,
        eta_min=3e-05,
        type='CosineAnnealingLR'),
]
randomness = dict(deterministic=False, seed=0)
resume = False
runner_type = 'TokenizerRunner'
scale = 0.5
test_cfg = dict(type='TestLoop')
test_dataloader = dict(
    batch_size=8,
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        crop_size=32,
        num_samples=64,
        scale=0.5,
        split='val',
        type='BundledPhotoPatches'),
    num_workers=0,
    sampler=dict(shuffle=False, type='DefaultSampler'))
test_evaluator = [
    dict(type='PSNR'),
    dict(type='SSIM'),
    dict(type='PerceptualDistance'),
    dict(type='CodebookUsage'),
    dict(type='OfflineFID'),
]
train_cfg = dict(max_iters=1000, type='IterBasedTrainLoop', val_interval=1000)
train_dataloader = dict(
    batch_size=16,
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        crop_size=32,
        num_samples=2000,
        scale=0.5,
        scales=(
            0.35,
            0.5,
            0.7,
        ),
        split='train',
        type='BundledPhotoPatches'),
    num_workers=0,
    sampler=dict(shuffle=True, type='InfiniteSampler'))
train_scales = (
    0.35,
    0.5,
    0.7,
)
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
