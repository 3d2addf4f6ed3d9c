# configs/ablation/simvq_16k.py on Fashion-MNIST (see fq2.py here).
_base_ = ['./simvq.py']
model = dict(quantizer=dict(codebook_size=16384))
