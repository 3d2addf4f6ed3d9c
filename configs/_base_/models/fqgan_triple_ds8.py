# FQGAN-Triple, downsample 8 (released "VQ-8", 32x32 token grid at 256px).
_base_ = ['./fqgan_triple_ds16.py']
grid_size = 32
model = dict(
    encoder=dict(ch_mult=(1, 2, 2, 4)),
    heads=dict(grid_size=grid_size),
    decoder=dict(ch_mult=(1, 2, 2, 4)),
    regularizers=[
        dict(type='DisentanglementRegularizer', weight=0.1),
        dict(type='SemanticRegularizer', branch=1, name='dino', weight=0.5,
             loss='infonce', temperature=1.0,
             teacher=dict(type='DINOv2Teacher',
                          model_name='vit_small_patch14_dinov2',
                          checkpoint=None, interpolation='nearest'),
             head=dict(type='FeaturePredictionHead', in_channels=8, width=384,
                       num_layers=3, num_heads=8, grid_size=grid_size)),
        dict(type='SemanticRegularizer', branch=2, name='clip', weight=0.5,
             loss='infonce', temperature=1.0,
             teacher=dict(type='CLIPTeacher', model_name='ViT-B-16',
                          pretrained_tag='openai', checkpoint=None,
                          interpolation='nearest'),
             head=dict(type='FeaturePredictionHead', in_channels=8, width=768,
                       num_layers=3, num_heads=8, grid_size=grid_size)),
    ],
)
