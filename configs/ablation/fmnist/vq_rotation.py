# configs/ablation/vq_rotation.py on Fashion-MNIST (see fq2.py here).
_base_ = ['./vq.py']
model = dict(quantizer=dict(rotation_trick=True))
