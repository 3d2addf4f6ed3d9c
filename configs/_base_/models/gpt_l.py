# LlamaGen GPT-L: 24 layers, width 1024, 16 heads (FAR-B's trunk without the
# factorized head).
_base_ = ['./gpt_b.py']
model = dict(backbone=dict(width=1024, num_layers=24, num_heads=16))
