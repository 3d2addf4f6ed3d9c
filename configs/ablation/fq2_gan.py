# FQ-2 with the PatchGAN discriminator on from iteration 300 (hinge loss,
# weight 0.1): what the GAN does at CPU scale (docs/cpu_recipe.md).
_base_ = ['./fq2.py']
model = dict(
    discriminator=dict(type='PatchGANDiscriminator', ndf=16, num_layers=2),
    disc_weight=0.1,
    disc_start=300,
)
