# Lookup-free quantization (MAGVIT-v2): 10 bits = 1024 implicit codes.
_base_ = ['./fq2.py']
model = dict(
    quantizer=dict(_delete_=True, type='LookupFreeQuantizer', embed_dim=10,
                   entropy_weight=0.1),
    regularizers=[])
