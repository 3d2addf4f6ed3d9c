"""BSQ behaviour that mutation testing showed no test pinned down
(docs/testing.md lists the mutants these tests kill).

References are worked out another way: codes and indices by hand from the
sign bits of the unit latent (tests/tokenizer_reference.py), the entropy
penalty per channel from a softmax over the pair ``{-s, s}`` (BSQ's
``q(c | u) ~ exp(<c, u> / T)`` factorises over channels, Zhao et al. 2024)
and the defaults are the module docstring's.
"""
import math

import pytest
import torch
import torch.nn.functional as F
from three_code_checks import steps_until_dead
from tokenizer_reference import codes_by_hand

from fqzoo.models.quantizers import BSQ
from fqzoo.models.quantizers.bsq import factorized_entropy_loss


def _tokens(z):
    return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])


def _binary_entropy(p):
    return -(torch.special.xlogy(p, p) + torch.special.xlogy(1 - p, 1 - p))


def _channel_entropy(u, scale, temperature, gamma):
    """Mean per-sample entropy minus gamma * the sum over channels of the
    entropy of the mean marginal, each channel a softmax over +-scale."""
    logits = torch.stack([-scale * u, scale * u], -1) / temperature
    plus = F.softmax(logits, -1)[..., 1]  # [N, D]: P(c_d = +scale | u)
    sample = _binary_entropy(plus).sum(1).mean()
    codebook = _binary_entropy(plus.mean(0)).sum()
    return sample - gamma * codebook


def test_codebook_size_is_two_to_the_bits():
    # checked before any test builds the default 2^18 codebook
    for dim in (1, 3, 5):
        assert BSQ(dim).codebook_size == 2 ** dim


def test_factorized_entropy_weights_the_codebook_term_by_1_by_default():
    rng = torch.Generator().manual_seed(0)
    u = F.normalize(torch.randn(16, 3, generator=rng, dtype=torch.float64),
                    dim=-1)
    scale = 1 / math.sqrt(3)
    want = _channel_entropy(u, scale, 0.5, gamma=1.0)
    assert factorized_entropy_loss(u, scale, 0.5).item() == pytest.approx(
        want.item(), rel=1e-9)


def test_saturated_channels_give_a_finite_penalty():
    # every token certain of both bits: the mean marginals are exactly 1
    # and 0, kept at 1 - 1e-6 and 1e-6 inside the codebook entropy
    u = torch.tensor([[0.6, -0.8]] * 3, dtype=torch.float64)
    loss = factorized_entropy_loss(u, 1 / math.sqrt(2), 1e-3)
    clamped = torch.tensor([1e-6, 1 - 1e-6], dtype=torch.float64)
    want = -_binary_entropy(clamped).sum()
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(want.item(), rel=1e-6)


def test_a_zero_channel_takes_the_negative_code():
    bsq = BSQ(3).eval()
    z = torch.tensor([[0., 1., -1.], [0., 0., 2.], [2., 0., 3.]])
    out = bsq(z.t().reshape(1, 3, 1, 3))
    codes, index = codes_by_hand(z, bsq)
    assert out.indices.flatten().tolist() == [0b010, 0b001, 0b101]
    assert torch.equal(out.indices.flatten(), index[:, 0])
    torch.testing.assert_close(_tokens(out.quantized).double(), codes)


def test_codes_keep_the_latents_low_precision_dtype():
    bsq = BSQ(3).eval()
    z = torch.tensor([0.5, -2.0, 1.0]).view(1, 3, 1, 1).to(torch.bfloat16)
    quantized = bsq(z).quantized
    assert quantized.dtype == torch.bfloat16
    s = 1 / math.sqrt(3)
    want = torch.tensor([s, -s, s]).to(torch.bfloat16)
    assert torch.equal(quantized.flatten(), want)


def test_zero_entropy_weight_leaves_the_penalty_out():
    bsq = BSQ(4, entropy_weight=0.0)
    losses = bsq.train()(torch.randn(1, 4, 2, 2)).losses
    assert set(losses) == {'loss_commit'}


def test_forward_metrics_are_the_batch_usage_and_perplexity():
    # four tokens on codes 0b00, 0b11, 0b11, 0b01 of 2^2
    bsq = BSQ(2).eval()
    z = torch.tensor([[-1., -1.], [1., 1.], [2., 3.], [-1., 1.]])
    out = bsq(z.t().reshape(1, 2, 2, 2))
    assert out.indices.flatten().tolist() == [0, 3, 3, 1]
    entropy = -(2 * 0.25 * math.log(0.25) + 0.5 * math.log(0.5))
    assert out.metrics['usage'].item() == pytest.approx(3 / 4)
    assert out.metrics['perplexity'].item() == pytest.approx(
        math.exp(entropy), rel=1e-6)


def test_default_window_declares_codes_dead_after_100_steps():
    assert steps_until_dead(BSQ(1)) == 100


def test_stats_window_argument_sets_when_codes_die():
    assert steps_until_dead(BSQ(1, stats_window=4)) == 4


def test_defaults_are_the_documented_ones():
    # docstring: 18 bits, beta 0.25, entropy weight 0.1 at temperature
    # 0.01, diversity weight 1
    assert BSQ(2).codebook_size == 4
    bsq = BSQ().train()
    assert (bsq.embed_dim, bsq.in_channels) == (18, 18)
    assert bsq.codebook_size == 2 ** 18
    rng = torch.Generator().manual_seed(0)
    z = torch.randn(1, 18, 2, 3, generator=rng, dtype=torch.float64)
    out = bsq(z)
    u = F.normalize(_tokens(z), dim=-1)
    s = 1 / math.sqrt(18)
    # the codes are float32 +-1/sqrt(18) (torch.where of Python floats)
    torch.testing.assert_close(_tokens(out.quantized), s * u.sign())
    commit = 0.25 * ((u - s * u.sign()) ** 2).mean()
    assert out.losses['loss_commit'].item() == pytest.approx(commit.item(),
                                                            rel=1e-6)
    entropy = 0.1 * _channel_entropy(u, s, 0.01, gamma=1.0)
    assert out.losses['loss_entropy'].item() == pytest.approx(
        entropy.item(), rel=1e-6)
