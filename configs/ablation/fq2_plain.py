# FQ-2 without regularizers: no disentanglement loss, no teacher (the "FQ"
# row of the paper's Table 3).
_base_ = ['./fq2.py']
model = dict(regularizers=[])
