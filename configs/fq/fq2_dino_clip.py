# FQ with two semantic sub-codebooks: as FQGAN-Dual ds16, but branch 0 is
# supervised by DINOv2 ViT-S/14 and branch 1 by CLIP ViT-L/14 (no
# pixel-only branch).
_base_ = ['./fqgan_dual_ds16.py']
model = dict(regularizers=[
    dict(type='DisentanglementRegularizer', weight=0.1),
    dict(type='SemanticRegularizer', branch=0, name='dino', weight=0.5,
         teacher=dict(type='DINOv2Teacher',
                      model_name='vit_small_patch14_dinov2', checkpoint=None,
                      interpolation='nearest'),
         head=dict(type='FeaturePredictionHead', in_channels=8, width=384,
                   num_layers=3, num_heads=8, grid_size=16)),
    dict(type='SemanticRegularizer', branch=1, name='clip', weight=0.5,
         teacher=dict(type='CLIPTeacher', model_name='ViT-L-14',
                      pretrained_tag='openai', checkpoint=None,
                      interpolation='nearest'),
         head=dict(type='FeaturePredictionHead', in_channels=8, width=1024,
                   num_layers=3, num_heads=8, grid_size=16)),
])
