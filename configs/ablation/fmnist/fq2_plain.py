# configs/ablation/fq2_plain.py on Fashion-MNIST (see fq2.py here).
_base_ = ['./fq2.py']
model = dict(regularizers=[])
