# LlamaGen GPT-XXL at 384 px: 48 layers, width 1536, 24 heads, 24x24 tokens
# of vq_ds16_c2i (c2i_XXL_384.pt). The release trained it with FSDP (its
# checkpoint is a bare state dict); configs/far/far_l_fqgan_dual_fsdp.py
# shows the strategy to add for that.
_base_ = ['./gpt_b_c2i_384.py']
model = dict(backbone=dict(width=1536, num_layers=48, num_heads=24))
