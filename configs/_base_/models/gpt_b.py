# LlamaGen GPT-B (Sun et al. 2024): 12 layers, width 768, 12 heads, one
# linear output layer (the AR baseline, G = 1 on plain VQ tokens).
model = dict(
    type='AutoregressiveGenerator',
    num_classes=1000,
    class_dropout=0.1,
    backbone=dict(type='LlamaGenBackbone', width=768, num_layers=12,
                  num_heads=12, token_dropout=0.1, resid_dropout=0.1,
                  ffn_dropout=0.1),
    head=dict(type='ParallelLinearHead'),
)
