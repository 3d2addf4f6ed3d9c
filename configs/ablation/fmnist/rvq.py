# configs/ablation/rvq.py on Fashion-MNIST (see fq2.py here).
_base_ = ['./fq2.py']
model = dict(
    quantizer=dict(_delete_=True, type='ResidualVQ', depth=2,
                   quantizer=dict(type='VectorQuantizer', codebook_size=512,
                                  embed_dim=8, l2_norm=False, beta=0.25)),
    regularizers=[])
