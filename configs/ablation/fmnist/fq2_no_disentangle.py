# configs/ablation/fq2_no_disentangle.py on Fashion-MNIST (see fq2.py here).
_base_ = ['./fq2.py']
model = dict(regularizers=[
    dict(type='SemanticRegularizer', branch=1, weight=0.1, loss='infonce',
         teacher=dict(type='EfficientNetTeacher', img_size=64),
         head=dict(type='FeaturePredictionHead', in_channels=8, width=64,
                   num_layers=1, num_heads=4, grid_size=8, out_channels=1280)),
])
