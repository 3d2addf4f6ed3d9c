# The AR baseline: LlamaGen GPT-B on plain VQ (downsample 16) ImageNet 256
# codes, one token per position, same recipe as FAR.
_base_ = [
    '../_base_/models/gpt_b.py',
    '../_base_/datasets/imagenet_codes.py',
    '../_base_/schedules/far_300e.py',
    '../_base_/generator_runtime.py',
]
model = dict(tokens=dict(tokenizer='configs/vq/vqgan_ds16_imagenet.py',
                         image_size=256))
train_dataloader = dict(
    dataset=dict(data_root='data/imagenet_codes/vqgan_ds16/train'))
