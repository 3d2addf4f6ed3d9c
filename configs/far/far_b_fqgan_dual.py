# FAR-B on FQGAN-Dual (downsample 16) ImageNet 256 codes: paper Table 2,
# gFID 3.38 / IS 248 at cfg 2.0 (tools/sample.py --cfg-scale 2.0).
_base_ = [
    '../_base_/models/far_b.py',
    '../_base_/datasets/imagenet_codes.py',
    '../_base_/schedules/far_300e.py',
    '../_base_/generator_runtime.py',
]
model = dict(tokens=dict(tokenizer='configs/fq/fqgan_dual_ds16.py',
                         image_size=256))
train_dataloader = dict(
    dataset=dict(data_root='data/imagenet_codes/fqgan_dual_ds16/train'))
