# LlamaGen GPT-3B at 384 px: 24 layers, width 3200, 32 heads (SwiGLU width
# 8704), 24x24 tokens of vq_ds16_c2i (c2i_3B_384.pt, trained with FSDP: a
# bare state dict). 32 heads is not tools/convert/llamagen_gpt.py's default
# for width 3200: it needs --num-heads 32.
_base_ = ['./gpt_b_c2i_384.py']
model = dict(backbone=dict(width=3200, num_layers=24, num_heads=32))
