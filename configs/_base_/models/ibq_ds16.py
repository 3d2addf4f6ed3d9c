# IBQ tokenizer, downsample 16 (Shi et al. 2024, arXiv 2412.02692; released
# TencentARC/SEED-Voken configs/IBQ/gpu/imagenet_ibqgan_16384.yaml, read for
# facts): the taming VQGAN trunk with 4 residual blocks per level and
# attention at 16x16, z 256, a 1x1 quant_conv / post_quant_conv 256 -> 256,
# one 16384 x 256 codebook trained by index backpropagation (quantization
# loss weight 1, entropy loss 0.05 at temperature 0.01), PatchGAN
# discriminator from iteration 0 at a fixed weight 0.1, L1 + LPIPS.
# Not reproduced: the release's LeCam regularisation (weight 0.05) and its
# non-saturating generator loss beside the hinge discriminator loss.
model = dict(
    type='ImageTokenizer',
    encoder=dict(type='VQGANEncoder', ch=128, ch_mult=(1, 1, 2, 2, 4),
                 num_res_blocks=4, z_channels=256),
    decoder=dict(type='VQGANDecoder', ch=128, ch_mult=(1, 1, 2, 2, 4),
                 num_res_blocks=4, z_channels=256),
    quantizer=dict(type='IndexBackpropQuantizer', codebook_size=16384,
                   embed_dim=256, beta=0.25, entropy_weight=0.05,
                   entropy_temperature=0.01),
    discriminator=dict(type='PatchGANDiscriminator', ndf=64, num_layers=3),
    # Needs the torchvision VGG16 weights file offline: see docs/troubleshooting.md.
    perceptual_loss=dict(type='LPIPSLoss', vgg_checkpoint=None),
    rec_loss='l1',
    perceptual_weight=1.0,
    disc_weight=0.1,
    disc_start=0,
    adaptive_disc_weight=False,
    gan_loss='hinge',
)
