"""Tokenizer losses: adversarial (GAN) and perceptual."""
from .adversarial import adversarial_loss, discriminator_loss
from .perceptual import EfficientNetPerceptualLoss, LPIPSLoss

__all__ = ['EfficientNetPerceptualLoss', 'LPIPSLoss', 'adversarial_loss',
           'discriminator_loss']
