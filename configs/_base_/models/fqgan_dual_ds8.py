# FQGAN-Dual, downsample 8 (released "VQ-8": ch_mult (1, 2, 2, 4), adapters'
# and prediction head's positional embeddings for the 32x32 grid of 256px).
_base_ = ['./fqgan_dual_ds16.py']
grid_size = 32
model = dict(
    encoder=dict(ch_mult=(1, 2, 2, 4)),
    heads=dict(grid_size=grid_size),
    decoder=dict(ch_mult=(1, 2, 2, 4)),
    regularizers=[
        dict(type='DisentanglementRegularizer', weight=0.1),
        dict(type='SemanticRegularizer', branch=1, name='clip', weight=0.5,
             loss='infonce', temperature=1.0,
             teacher=dict(type='CLIPTeacher', model_name='ViT-L-14',
                          pretrained_tag='openai', checkpoint=None,
                          interpolation='nearest'),
             head=dict(type='FeaturePredictionHead', in_channels=8,
                       width=1024, num_layers=3, num_heads=8,
                       grid_size=grid_size)),
    ],
)
