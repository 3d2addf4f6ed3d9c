# LlamaGen GPT-L at 256 px: 24 layers, width 1024, 16 heads, 16x16 tokens of
# vq_ds16_c2i (c2i_L_256.pt).
_base_ = ['./gpt_b_c2i_256.py']
model = dict(backbone=dict(width=1024, num_layers=24, num_heads=16))
