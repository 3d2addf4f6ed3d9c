# configs/ablation/fsq.py on Fashion-MNIST (see fq2.py here).
_base_ = ['./fq2.py']
model = dict(
    quantizer=dict(_delete_=True, type='FSQ', levels=(8, 5, 5, 5)),
    regularizers=[])
