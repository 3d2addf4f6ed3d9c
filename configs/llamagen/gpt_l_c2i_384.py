# LlamaGen GPT-L at 384 px: 24x24 tokens of vq_ds16_c2i (c2i_L_384.pt).
_base_ = ['./gpt_b_c2i_384.py']
model = dict(backbone=dict(width=1024, num_layers=24, num_heads=16))
