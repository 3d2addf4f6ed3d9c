# configs/ablation/vq.py on Fashion-MNIST (see fq2.py here).
_base_ = ['./fq2.py']
model = dict(
    quantizer=dict(_delete_=True, type='VectorQuantizer', codebook_size=1024,
                   embed_dim=8, l2_norm=True, beta=0.25),
    regularizers=[])
