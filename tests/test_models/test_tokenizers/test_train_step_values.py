"""``ImageTokenizer.train_step`` checked by value.

The references are written here from the objective's definition (VQGAN,
Esser et al. 2021; FQGAN, Bai et al. 2024): L2 reconstruction plus a
perceptual term, codebook + beta * commitment loss with opposite sides
detached, hinge GAN losses from ``disc_start`` and the adaptive weight
``disc_weight * clamp(|grad nll| / (|grad g| + 1e-4), 0, 1e4)`` at the
decoder's last layer. With SGD (no momentum) one step moves a parameter by
exactly ``-lr * grad``, so the parameters after a step pin which losses the
step used.
"""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from torch import nn

from fqzoo.engine import TokenizerOptimWrapperConstructor
from fqzoo.registry import MODELS

LR = 0.1
DISC_START = 3
BETA = 0.25


class ToyPerceptual(nn.Module):
    """A frozen stand-in for LPIPS: per-sample mean |conv(x) - conv(y)|."""

    def __init__(self) -> None:
        super().__init__()
        rng = torch.Generator().manual_seed(3)
        self.register_buffer('weight', torch.randn(4, 3, 3, 3, generator=rng))

    def forward(self, x, y):
        diff = F.conv2d(x, self.weight) - F.conv2d(y, self.weight)
        return diff.abs().mean(dim=(1, 2, 3))


def build(discriminator=True, **kwargs):
    torch.manual_seed(0)
    cfg = dict(
        type='ImageTokenizer',
        encoder=dict(type='VQGANEncoder', ch=8, ch_mult=(1, 2),
                     num_res_blocks=1, z_channels=8),
        decoder=dict(type='VQGANDecoder', ch=8, ch_mult=(1, 2),
                     num_res_blocks=1, z_channels=8),
        quantizer=dict(type='VectorQuantizer', codebook_size=16, embed_dim=4,
                       beta=BETA),
        discriminator=(dict(type='PatchGANDiscriminator', ndf=8, num_layers=2)
                       if discriminator else None),
        perceptual_loss=ToyPerceptual(), perceptual_weight=0.7,
        rec_weight=1.3, disc_weight=0.6, disc_start=DISC_START)
    cfg.update(kwargs)
    model = MODELS.build(cfg)
    opt = dict(optimizer=dict(type='SGD', lr=LR))
    cfgs = dict(autoencoder=opt, discriminator=opt) if discriminator else \
        dict(autoencoder=opt)
    return model, TokenizerOptimWrapperConstructor(cfgs)(model)


def images(n=4, size=16):
    rng = torch.Generator().manual_seed(1)
    return torch.rand(n, 3, size, size, generator=rng) * 2 - 1


def step(model, wrappers, it):
    """One ``train_step`` at iteration ``it``; returns the log and a copy of
    the model as it was before the step."""
    before = copy.deepcopy(model)
    MessageHub.get_current_instance().update_info('iter', it)
    log = model.train_step(dict(inputs=images()), wrappers)
    return log, before


def reference(before, x, rec_weight=1.3, perceptual_weight=0.7):
    """The generator-side objective recomputed on the pre-step model."""
    recon = before.decode_quantized(before.quantize(x).quantized)
    rec = rec_weight * ((recon - x)**2).mean()
    nll = rec + perceptual_weight * before.perceptual_loss(recon, x).mean()
    return recon, rec, nll


def hinge_g(logits_fake):
    return -logits_fake.mean()


def hinge_d(logits_real, logits_fake):
    return 0.5 * ((1 - logits_real).clamp(min=0).mean() +
                  (1 + logits_fake).clamp(min=0).mean())


def adaptive_weight(nll, g, last, disc_weight=0.6):
    g_nll = torch.autograd.grad(nll, last, retain_graph=True)[0]
    g_adv = torch.autograd.grad(g, last, retain_graph=True)[0]
    ratio = g_nll.norm() / (g_adv.norm() + 1e-4)
    return disc_weight * ratio.clamp(0.0, 1e4), ratio


def assert_sgd_step(after, before, grad):
    torch.testing.assert_close(after, before - LR * grad, rtol=1e-5,
                               atol=1e-7)


def loss_keys(log):
    return {k for k in log if 'loss' in k}


def codebook_grad(before, x):
    """Gradient of ``loss_codebook = mse(e_idx, z.detach())`` on the raw
    codebook weight, with l2-normalised codes and latents and the index of
    the most similar code (the nearest on the unit sphere)."""
    z = before.quant_convs[0](before.heads[0](before.encoder(x)))
    flat = F.normalize(z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]), dim=-1)
    weight = before.quantizer.embedding.weight
    codes = F.normalize(weight, dim=-1)
    idx = (flat @ codes.t()).argmax(dim=1)
    loss = ((codes[idx] - flat.detach())**2).mean()
    return torch.autograd.grad(loss, weight)[0]


@pytest.mark.parametrize('discriminator', [True, False])
def test_autoencoder_only_step(discriminator):
    """Before ``disc_start`` (or without a discriminator at any iteration):
    no GAN losses, the decoder moves by the reconstruction + perceptual
    gradient only, the codebook by the codebook-loss gradient only, and the
    discriminator does not move."""
    model, wrappers = build(discriminator)
    assert ('discriminator' in wrappers) == discriminator
    it = DISC_START - 1 if discriminator else 100
    log, before = step(model, wrappers, it)
    x = images()

    assert loss_keys(log) == {'loss', 'loss_rec', 'loss_perceptual',
                              'loss_codebook', 'loss_commit'}
    recon, rec, nll = reference(before, x)
    torch.testing.assert_close(log['loss_rec'], rec.detach())
    torch.testing.assert_close(
        log['loss'], log['loss_rec'] + log['loss_perceptual'] +
        log['loss_codebook'] + log['loss_commit'])

    last = before.decoder.last_layer
    assert_sgd_step(model.decoder.last_layer.detach(), last.detach(),
                    torch.autograd.grad(nll, last)[0])
    assert_sgd_step(model.quantizer.embedding.weight.detach(),
                    before.quantizer.embedding.weight.detach(),
                    codebook_grad(before, x))
    if discriminator:
        for a, b in zip(model.discriminator.parameters(),
                        before.discriminator.parameters()):
            assert torch.equal(a, b)
            assert a.grad is None or not a.grad.any()
        assert not wrappers['discriminator'].optimizer.state


@pytest.mark.parametrize('adaptive', [False, True])
def test_gan_step_from_disc_start(adaptive):
    """At ``disc_start``: ``loss_adv = weight * (-mean D(recon))`` with the
    fixed or adaptive weight, the decoder moves by the gradient of
    ``nll + loss_adv`` (weight held constant), and the discriminator by the
    hinge loss on real images and detached reconstructions."""
    model, wrappers = build(adaptive_disc_weight=adaptive)
    log, before = step(model, wrappers, DISC_START)
    x = images()

    assert loss_keys(log) == {'loss', 'loss_rec', 'loss_perceptual',
                              'loss_codebook', 'loss_commit', 'loss_adv',
                              'loss_disc'}
    recon, rec, nll = reference(before, x)
    disc = before.discriminator
    for p in disc.parameters():
        p.requires_grad_(False)
    g = hinge_g(disc(recon))
    last = before.decoder.last_layer
    if adaptive:
        weight, ratio = adaptive_weight(nll, g, last)
        assert 1e-3 < ratio < 1e4  # the clamp is not what sets it here
    else:
        weight = torch.tensor(0.6)
    torch.testing.assert_close(log['loss_adv'], (weight * g).detach(),
                               rtol=1e-5, atol=1e-7)
    assert_sgd_step(model.decoder.last_layer.detach(), last.detach(),
                    torch.autograd.grad(nll + weight.detach() * g, last)[0])

    for p in disc.parameters():
        p.requires_grad_(True)
    logits_real, logits_fake = disc(x), disc(recon.detach())
    d_loss = hinge_d(logits_real, logits_fake)
    torch.testing.assert_close(log['loss_disc'], d_loss.detach())
    torch.testing.assert_close(log['logits_real'], logits_real.mean().detach())
    torch.testing.assert_close(log['logits_fake'], logits_fake.mean().detach())
    grads = torch.autograd.grad(d_loss, list(disc.parameters()))
    for a, b, grad in zip(model.discriminator.parameters(),
                          disc.parameters(), grads):
        assert_sgd_step(a.detach(), b.detach(), grad)


def test_adaptive_weight_is_clamped():
    """A reconstruction gradient 10^4 times larger than the GAN gradient
    caps the weight at ``disc_weight * 1e4``."""
    model, wrappers = build(adaptive_disc_weight=True, rec_weight=1e6)
    log, before = step(model, wrappers, DISC_START)
    recon, rec, nll = reference(before, images(), rec_weight=1e6)
    for p in before.discriminator.parameters():
        p.requires_grad_(False)
    g = hinge_g(before.discriminator(recon))
    weight, ratio = adaptive_weight(nll, g, before.decoder.last_layer)
    assert ratio > 1e4
    torch.testing.assert_close(log['loss_adv'], 0.6 * 1e4 * g.detach(),
                               rtol=1e-5, atol=1e-7)


def test_non_saturating_gan_step():
    """``gan_loss='non_saturating'`` switches both sides of the game."""
    model, wrappers = build(gan_loss='non_saturating')
    log, before = step(model, wrappers, DISC_START + 1)
    x = images()
    recon, _, _ = reference(before, x)
    disc = before.discriminator
    g = F.softplus(-disc(recon)).mean()
    torch.testing.assert_close(log['loss_adv'], (0.6 * g).detach())
    d_loss = 0.5 * (F.softplus(-disc(x)).mean() +
                    F.softplus(disc(recon.detach())).mean())
    torch.testing.assert_close(log['loss_disc'], d_loss.detach())


def test_commitment_and_codebook_losses_detach_opposite_sides():
    """``loss_commit = beta * mse(z, sg(e))`` moves only the latent,
    ``loss_codebook = mse(sg(z), e)`` only the codebook."""
    model, _ = build(discriminator=False)
    seen = {}
    model.quantizer.register_forward_pre_hook(
        lambda module, args: seen.update(z=args[0]))
    losses = model(images(), mode='loss')
    z, weight = seen['z'], model.quantizer.embedding.weight

    flat = F.normalize(z.permute(0, 2, 3, 1).reshape(-1, 4), dim=-1)
    codes = F.normalize(weight, dim=-1)
    idx = (flat @ codes.t()).argmax(dim=1)
    commit = BETA * ((flat - codes[idx].detach())**2).mean()
    codebook = ((codes[idx] - flat.detach())**2).mean()
    torch.testing.assert_close(losses['loss_commit'], commit)
    torch.testing.assert_close(losses['loss_codebook'], codebook)

    grad_z, grad_w = torch.autograd.grad(
        losses['loss_commit'], [z, weight], retain_graph=True,
        allow_unused=True)
    assert grad_w is None or not grad_w.any()
    torch.testing.assert_close(
        grad_z, torch.autograd.grad(commit, z, retain_graph=True)[0])
    grad_z, grad_w = torch.autograd.grad(
        losses['loss_codebook'], [z, weight], retain_graph=True,
        allow_unused=True)
    assert grad_z is None or not grad_z.any()
    torch.testing.assert_close(
        grad_w, torch.autograd.grad(codebook, weight)[0])
