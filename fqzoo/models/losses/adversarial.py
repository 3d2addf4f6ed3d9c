"""GAN losses on discriminator logits: hinge (VQGAN) and non-saturating."""
import torch.nn.functional as F
from torch import Tensor


def discriminator_loss(logits_real: Tensor, logits_fake: Tensor,
                       kind: str = 'hinge') -> Tensor:
    """Loss the discriminator minimises."""
    if kind == 'hinge':
        return 0.5 * (F.relu(1.0 - logits_real).mean() +
                      F.relu(1.0 + logits_fake).mean())
    if kind == 'non_saturating':
        return 0.5 * (F.softplus(-logits_real).mean() +
                      F.softplus(logits_fake).mean())
    raise ValueError(f'Unknown GAN loss "{kind}": use "hinge" or '
                     '"non_saturating".')


def adversarial_loss(logits_fake: Tensor, kind: str = 'hinge') -> Tensor:
    """Loss the autoencoder minimises to fool the discriminator."""
    if kind == 'hinge':
        return -logits_fake.mean()
    if kind == 'non_saturating':
        return F.softplus(-logits_fake).mean()
    raise ValueError(f'Unknown GAN loss "{kind}": use "hinge" or '
                     '"non_saturating".')
