# The shipped `fqzoo-photos-fq2` tokenizer for inference
# (fqzoo/zoo_assets/fqzoo-photos-fq2/): the quickstart FQ-2 (2 x 512 codes,
# one token per 4x4 pixels) on photos; trained on 32x32 patches, its trunk
# (no norm layers, no attention) encodes whole photos too. Trained with
# ./train/photos_fq2.py. Its checkpoint records the token layout with
# branch 1 named after its teacher (sub-tokens pixel, semantic_1), so the
# regularizers stay in the model (their prediction head's weights ship with
# it); the EfficientNet teacher acts only in training and is built without
# its weights here.
_base_ = ['./train/photos_fq2.py']

model = dict(regularizers=[
    dict(type='DisentanglementRegularizer', weight=0.1),
    dict(type='SemanticRegularizer', branch=1, weight=0.1, loss='infonce',
         teacher=dict(type='EfficientNetTeacher', img_size=64,
                      pretrained=False),
         head=dict(type='FeaturePredictionHead', in_channels=8, width=64,
                   num_layers=1, num_heads=4, grid_size=8,
                   out_channels=1280)),
])
