# Residual VQ: depth 2, separate 512-code codebooks (18 bits, like FQ-2).
_base_ = ['./fq2.py']
model = dict(
    quantizer=dict(_delete_=True, type='ResidualVQ', depth=2,
                   quantizer=dict(type='VectorQuantizer', codebook_size=512,
                                  embed_dim=8, l2_norm=False, beta=0.25)),
    regularizers=[])
