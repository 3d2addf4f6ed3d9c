# configs/ablation/vq_16k.py on Fashion-MNIST (see fq2.py here).
_base_ = ['./vq.py']
model = dict(quantizer=dict(codebook_size=16384))
