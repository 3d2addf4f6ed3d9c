"""GAN losses on hand-worked logits (every expected number is worked out by
hand in the comments)."""
import math

import pytest
import torch

from fqzoo.models.losses.adversarial import adversarial_loss, discriminator_loss

# Patch maps of 4 logits, shaped as a PatchGAN output [B, 1, h, w].
REAL = torch.tensor([2.0, 0.5, -1.0, 0.0]).reshape(2, 1, 1, 2)
FAKE = torch.tensor([-2.0, 0.5, 1.5, -0.5]).reshape(2, 1, 1, 2)


def test_hinge_discriminator_loss_by_hand():
    # relu(1 - real) = [0, 0.5, 2, 1]     -> mean 3.5 / 4 = 0.875
    # relu(1 + fake) = [0, 1.5, 2.5, 0.5] -> mean 4.5 / 4 = 1.125
    # 0.5 * (0.875 + 1.125) = 1.0
    assert discriminator_loss(REAL, FAKE, 'hinge').item() == pytest.approx(1.0)
    # Swapping real and fake is not symmetric:
    # relu(1 - fake) = [3, 0.5, 0, 1.5] -> 5 / 4 = 1.25
    # relu(1 + real) = [3, 1.5, 0, 1]   -> 5.5 / 4 = 1.375
    # 0.5 * (1.25 + 1.375) = 1.3125
    assert discriminator_loss(FAKE, REAL, 'hinge').item() == \
        pytest.approx(1.3125)


def test_hinge_discriminator_loss_is_the_default_and_zero_when_confident():
    # real logits >= 1 and fake logits <= -1 are past both margins.
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, -4.0])
    assert discriminator_loss(real, fake).item() == 0.0
    assert discriminator_loss(REAL, FAKE).item() == pytest.approx(1.0)


def test_hinge_generator_loss_by_hand():
    # -mean(fake) = -(-2 + 0.5 + 1.5 - 0.5) / 4 = -(-0.5) / 4 = 0.125
    assert adversarial_loss(FAKE, 'hinge').item() == pytest.approx(0.125)
    assert adversarial_loss(FAKE).item() == pytest.approx(0.125)
    # Its gradient pushes every fake logit up by 1 / N.
    fake = FAKE.clone().requires_grad_()
    adversarial_loss(fake, 'hinge').backward()
    assert torch.equal(fake.grad, torch.full_like(fake, -0.25))


def test_non_saturating_discriminator_loss_by_hand():
    # softplus(x) = log(1 + e^x): softplus(log 3) = log 4,
    # softplus(-log 3) = log(4 / 3), softplus(0) = log 2.
    real = torch.tensor([math.log(3.0), 0.0])
    fake = torch.tensor([-math.log(3.0), 0.0])
    # softplus(-real) = [log(4/3), log 2]; softplus(fake) = [log(4/3), log 2]
    # 0.5 * (mean + mean) = 0.5 * (log(4/3) + log 2) = 0.5 * log(8/3)
    loss = discriminator_loss(real, fake, 'non_saturating')
    assert loss.item() == pytest.approx(0.5 * math.log(8.0 / 3.0))
    # A discriminator that believes the fakes: real and fake swapped,
    # softplus(-fake) = [log 4, log 2], softplus(real) = [log 4, log 2]
    # -> 0.5 * (log 4 + log 2) = 1.5 * log 2
    loss = discriminator_loss(fake, real, 'non_saturating')
    assert loss.item() == pytest.approx(1.5 * math.log(2.0))


def test_non_saturating_generator_loss_by_hand():
    fake = torch.tensor([-math.log(3.0), 0.0, math.log(3.0)])
    # softplus(-fake) = [log 4, log 2, log(4/3)] -> mean
    # = (2 log 2 + log 2 + 2 log 2 - log 3) / 3 = (5 log 2 - log 3) / 3
    expected = (5 * math.log(2.0) - math.log(3.0)) / 3
    assert adversarial_loss(fake, 'non_saturating').item() == \
        pytest.approx(expected)


@pytest.mark.parametrize('call', [
    lambda kind: discriminator_loss(REAL, FAKE, kind),
    lambda kind: adversarial_loss(FAKE, kind),
], ids=['discriminator', 'generator'])
def test_unknown_kind_names_value_and_known_kinds(call):
    with pytest.raises(ValueError) as err:
        call('wgan')
    message = str(err.value)
    assert '"wgan"' in message
    assert '"hinge"' in message and '"non_saturating"' in message
