# A CPU-scale VQGAN: 32x32 images to 8x8 tokens (downsample 4), a 512-code
# codebook. The trunk has no normalisation and no attention (norm='none',
# attention=False): with VQGAN's GroupNorm and attention a trunk trained on
# 32 px crops shifts colours on a whole 256 px photo; with per-position
# norms (norm='pixel') it encodes a whole photo as well as its crops but
# pulls saturated colours towards grey; with neither it does both well
# (docs/cpu_recipe.md).
# No GAN and no perceptual loss at this scale: in 600-iteration runs they
# cost time and PSNR (the GAN also the perceptual metric; docs/cpu_recipe.md); the
# paper configs keep both.
model = dict(
    type='ImageTokenizer',
    encoder=dict(type='VQGANEncoder', ch=32, ch_mult=(1, 2, 2),
                 num_res_blocks=1, z_channels=32, norm='none',
                 attention=False),
    decoder=dict(type='VQGANDecoder', ch=32, ch_mult=(1, 2, 2),
                 num_res_blocks=1, z_channels=32, norm='none',
                 attention=False),
    quantizer=dict(type='VectorQuantizer', codebook_size=512, embed_dim=8,
                   l2_norm=True, beta=0.25),
    rec_loss='l2',
)
