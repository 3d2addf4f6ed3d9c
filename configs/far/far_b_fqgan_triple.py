# FAR-B on FQGAN-Triple (downsample 16) ImageNet 256 codes: three sub-tokens
# per position, the head predicts them in branch order.
_base_ = ['./far_b_fqgan_dual.py']
model = dict(tokens=dict(tokenizer='configs/fq/fqgan_triple_ds16.py'))
train_dataloader = dict(
    dataset=dict(data_root='data/imagenet_codes/fqgan_triple_ds16/train'))
