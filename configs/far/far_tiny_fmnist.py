# A tiny FAR on Fashion-MNIST FQ-2 codes (8x8 positions, 2 x 256 codes),
# trained on 2 CPU cores (docs/generation.md); held-out NLL on the test
# split's codes. Codes first:
#   python tools/extract_codes.py configs/fq/fq2_tiny_fmnist.py CKPT \
#       --split train --out work_dirs/codes/fq2_fmnist/train
#   python tools/extract_codes.py configs/fq/fq2_tiny_fmnist.py CKPT \
#       --split test --out work_dirs/codes/fq2_fmnist/test
_base_ = [
    '../_base_/schedules/gen_cpu_short.py',
    '../_base_/generator_runtime.py',
]
codes_root = 'work_dirs/codes/fq2_fmnist/train'
test_codes_root = 'work_dirs/codes/fq2_fmnist/test'
model = dict(
    type='AutoregressiveGenerator',
    num_classes=10,
    class_dropout=0.1,
    tokens=codes_root,
    backbone=dict(type='LlamaGenBackbone', width=128, num_layers=4,
                  num_heads=4, token_dropout=0.1, resid_dropout=0.1,
                  ffn_dropout=0.1),
    head=dict(type='FactorizedARHead', num_layers=1, num_heads=4,
              resid_dropout=0.1, ffn_dropout=0.1),
)
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CodeDataset', data_root=codes_root),
)
val_dataloader = dict(
    batch_size=250,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CodeDataset', data_root=test_codes_root),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='TokenNLL')
test_evaluator = val_evaluator
train_cfg = dict(val_interval=500)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
custom_hooks = [dict(type='EMAHook', momentum=0.01, begin_iter=200)]
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=500, by_epoch=False, max_keep_ckpts=2),
)
log_processor = dict(by_epoch=False)
