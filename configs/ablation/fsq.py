# Finite scalar quantization: levels (8, 5, 5, 5) = 1000 implicit codes.
_base_ = ['./fq2.py']
model = dict(
    quantizer=dict(_delete_=True, type='FSQ', levels=(8, 5, 5, 5)),
    regularizers=[])
