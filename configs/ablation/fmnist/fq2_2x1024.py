# configs/ablation/fq2_2x1024.py on Fashion-MNIST (see fq2.py here).
_base_ = ['./fq2.py']
model = dict(quantizer=dict(quantizer=dict(codebook_size=1024)))
