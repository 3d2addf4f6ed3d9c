# configs/ablation/fq3.py on Fashion-MNIST (see fq2.py here).
_base_ = ['./fq2.py']
model = dict(
    quantizer=dict(num_codebooks=3),
    regularizers=[
        dict(type='DisentanglementRegularizer', weight=0.1),
        dict(type='SemanticRegularizer', branch=2, weight=0.1, loss='infonce',
             teacher=dict(type='EfficientNetTeacher', img_size=64),
             head=dict(type='FeaturePredictionHead', in_channels=8, width=64,
                       num_layers=1, num_heads=4, grid_size=8, out_channels=1280)),
    ])
