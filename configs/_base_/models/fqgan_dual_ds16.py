# FQGAN-Dual, downsample 16 (Bai et al. 2024, arXiv 2411.16681; released
# showlab/FQGAN tokenizer/vq_model_dual.py "VQ-16"): the LlamaGen VQGAN trunk
# without its output conv, two branches, each a factorized adapter
# (transformer width 512, 6 layers, 8 heads, positional embedding for the
# 16x16 grid) + GroupNorm/SiLU/3x3 conv to 256 channels + 1x1 conv to 8,
# two l2-normalised 16384 x 8 sub-codebooks (entropy loss 0.03), one pixel
# decoder. Branch 0: pixel details; branch 1: semantic, supervised by CLIP
# ViT-L/14 (pre-norm class token, 1024-d) through a 3-layer prediction head.
grid_size = 16
model = dict(
    type='ImageTokenizer',
    encoder=dict(type='VQGANTrunk', ch=128, ch_mult=(1, 1, 2, 2, 4),
                 num_res_blocks=2),
    heads=dict(type='TransformerBranchHead', in_channels=512,
               out_channels=256, width=512, num_layers=6, num_heads=8,
               grid_size=grid_size),
    quantizer=dict(
        type='FactorizedQuantizer', num_codebooks=2,
        quantizer=dict(type='VectorQuantizer', codebook_size=16384,
                       embed_dim=8, l2_norm=True, beta=0.25,
                       entropy_weight=0.03)),
    decoder=dict(type='VQGANDecoder', ch=128, ch_mult=(1, 1, 2, 2, 4),
                 num_res_blocks=2, z_channels=256),
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
    discriminator=dict(type='PatchGANDiscriminator', ndf=64, num_layers=3),
    # Needs the torchvision VGG16 weights file offline: see docs/fqgan.md.
    perceptual_loss=dict(type='LPIPSLoss', vgg_checkpoint=None),
    rec_loss='l2',
    perceptual_weight=1.0,
    disc_weight=0.5,
    disc_start=20000,
    adaptive_disc_weight=False,
    gan_loss='hinge',
)
