# FAR-L (FQGAN): LlamaGen GPT-XL's trunk (36 layers, width 1280, 20 heads)
# with a factorized AR head of 4 blocks.
_base_ = ['./far_b.py']
model = dict(
    backbone=dict(width=1280, num_layers=36, num_heads=20),
    head=dict(num_layers=4, num_heads=20),
)
