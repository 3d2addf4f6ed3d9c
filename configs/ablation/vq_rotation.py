# vq.py with the rotation trick (arXiv 2410.06424) in place of the
# straight-through gradient.
_base_ = ['./vq.py']
model = dict(quantizer=dict(rotation_trick=True))
