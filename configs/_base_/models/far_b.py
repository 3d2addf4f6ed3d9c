# FAR-B (FQGAN, Bai et al. 2024): LlamaGen GPT-L's trunk (24 layers, width
# 1024, 16 heads) with a factorized AR head of 3 blocks; the token grid and
# the sub-codebook sizes come from the tokenizer (set `tokens` in the leaf).
model = dict(
    type='AutoregressiveGenerator',
    num_classes=1000,
    class_dropout=0.1,
    backbone=dict(type='LlamaGenBackbone', width=1024, num_layers=24,
                  num_heads=16, token_dropout=0.1, resid_dropout=0.1,
                  ffn_dropout=0.1),
    head=dict(type='FactorizedARHead', num_layers=3, num_heads=16,
              resid_dropout=0.1, ffn_dropout=0.1),
)
