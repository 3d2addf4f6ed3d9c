# LlamaGen GPT-XL at 384 px: 36 layers, width 1280, 20 heads, 24x24 tokens of
# vq_ds16_c2i (c2i_XL_384.pt).
_base_ = ['./gpt_b_c2i_384.py']
model = dict(backbone=dict(width=1280, num_layers=36, num_heads=20))
