# configs/ablation/fq2_no_teacher.py on Fashion-MNIST (see fq2.py here).
_base_ = ['./fq2.py']
model = dict(regularizers=[dict(type='DisentanglementRegularizer', weight=0.1)])
