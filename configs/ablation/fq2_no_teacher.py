# FQ-2 without the semantic teacher (disentanglement only).
_base_ = ['./fq2.py']
model = dict(regularizers=[dict(type='DisentanglementRegularizer', weight=0.1)])
