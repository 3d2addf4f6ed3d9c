# A CPU-scale VQGAN: 32x32 images to 8x8 tokens (downsample 4), a 512-code
# codebook, a small PatchGAN and the offline EfficientNet-Lite0 perceptual loss.
model = dict(
    type='ImageTokenizer',
    encoder=dict(type='VQGANEncoder', ch=32, ch_mult=(1, 2, 2),
                 num_res_blocks=1, z_channels=32),
    decoder=dict(type='VQGANDecoder', ch=32, ch_mult=(1, 2, 2),
                 num_res_blocks=1, z_channels=32),
    quantizer=dict(type='VectorQuantizer', codebook_size=512, embed_dim=8,
                   l2_norm=True, beta=0.25),
    discriminator=dict(type='PatchGANDiscriminator', ndf=16, num_layers=2),
    perceptual_loss=dict(type='EfficientNetPerceptualLoss'),
    rec_loss='l2',
    perceptual_weight=0.1,
    disc_weight=0.1,
    disc_start=1000,
)
