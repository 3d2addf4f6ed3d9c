# FQGAN-Triple, downsample 16 (released tokenizer/vq_model_triple.py): as
# Dual with three branches and sub-codebooks. Branch 0: pixel details only;
# branch 1: mid-level semantics, DINOv2 ViT-S/14 (normed class token, 384-d);
# branch 2: high-level semantics, CLIP ViT-B/16 (pre-norm class token,
# 768-d). Disentanglement averages the three pairs.
_base_ = ['./fqgan_dual_ds16.py']
grid_size = 16
model = dict(
    quantizer=dict(num_codebooks=3),
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
