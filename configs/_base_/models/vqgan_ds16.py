# LlamaGen's VQ-16 tokenizer (Sun et al. 2024): VQGAN conv trunk, downsample 16,
# one l2-normalised 16384 x 8 codebook, PatchGAN, LPIPS perceptual loss.
model = dict(
    type='ImageTokenizer',
    encoder=dict(type='VQGANEncoder', ch=128, ch_mult=(1, 1, 2, 2, 4),
                 num_res_blocks=2, z_channels=256),
    decoder=dict(type='VQGANDecoder', ch=128, ch_mult=(1, 1, 2, 2, 4),
                 num_res_blocks=2, z_channels=256),
    quantizer=dict(type='VectorQuantizer', codebook_size=16384, embed_dim=8,
                   l2_norm=True, beta=0.25),
    discriminator=dict(type='PatchGANDiscriminator', ndf=64, num_layers=3),
    # Needs the torchvision VGG16 weights file offline: see docs/troubleshooting.md.
    perceptual_loss=dict(type='LPIPSLoss', vgg_checkpoint=None),
    rec_loss='l2',
    perceptual_weight=1.0,
    disc_weight=0.5,
    disc_start=20000,
)
