# configs/ablation/lfq.py on Fashion-MNIST (see fq2.py here).
_base_ = ['./fq2.py']
model = dict(
    quantizer=dict(_delete_=True, type='LookupFreeQuantizer', embed_dim=10,
                   entropy_weight=0.1),
    regularizers=[])
