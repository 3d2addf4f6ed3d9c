# LlamaGen GPT-B at 384 px: 24x24 tokens of vq_ds16_c2i (c2i_B_384.pt).
_base_ = ['./gpt_b_c2i_256.py']
model = dict(grid_size=(24, 24))
train_dataloader = dict(
    dataset=dict(data_root='data/imagenet_codes/vq_ds16_c2i_384/train'))
