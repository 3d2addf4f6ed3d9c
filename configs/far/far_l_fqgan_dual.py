# FAR-L on FQGAN-Dual (downsample 16) ImageNet 256 codes: paper Table 2,
# gFID 3.08 / IS 272 at cfg 2.0. FAR-B's recipe with FAR-L's sizes
# (configs/_base_/models/far_l.py).
_base_ = ['./far_b_fqgan_dual.py']
model = dict(
    backbone=dict(width=1280, num_layers=36, num_heads=20),
    head=dict(num_layers=4, num_heads=20),
)
