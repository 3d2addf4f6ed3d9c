# FQ-3: three 512-code sub-codebooks; teacher on branch 2, branches 0-1 pixel.
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
