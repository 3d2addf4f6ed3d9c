# configs/ablation/simvq.py on Fashion-MNIST (see fq2.py here).
_base_ = ['./vq.py']
model = dict(
    quantizer=dict(_delete_=True, type='SimVQ', codebook_size=1024,
                   embed_dim=8, beta=0.25))
