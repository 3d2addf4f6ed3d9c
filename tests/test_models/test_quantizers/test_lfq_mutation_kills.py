"""LookupFreeQuantizer behaviour that mutation testing showed no test
pinned down (docs/testing.md lists the mutants these tests kill).

References are worked out another way: the index is read off the sign bits
by hand (first channel most significant), the entropy penalty by a softmax
over every code of a group (MAGVIT-v2's ``q(c | z) ~ exp(-|z - c|^2 / T)``)
and the defaults are the module docstring's.
"""
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from three_code_checks import steps_until_dead
from tokenizer_reference import codes_by_hand

from fqzoo.models.quantizers import LookupFreeQuantizer
from fqzoo.models.quantizers.lfq import bits_to_indices, indices_to_bits


def _tokens(z):
    return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])


def _entropy(probs):
    return -torch.special.xlogy(probs, probs).sum(-1)


def test_codebook_size_is_two_to_the_bits():
    # checked before any test builds the default 2^18 codebook
    for dim in (1, 3, 5):
        lfq = LookupFreeQuantizer(dim, entropy_groups=1)
        assert lfq.codebook_size == 2 ** dim


def test_bits_to_indices_reads_the_last_axis_with_leading_dimensions():
    bits = torch.rand(2, 3, 4, generator=torch.Generator().manual_seed(0))
    bits = bits > 0.5
    want = torch.zeros(2, 3, dtype=torch.long)
    for i, j in itertools.product(range(2), range(3)):
        for bit in bits[i, j].tolist():  # most significant first
            want[i, j] = want[i, j] * 2 + bit
    assert torch.equal(bits_to_indices(bits), want)
    assert torch.equal(indices_to_bits(want, 4), bits)


def test_bit_helpers_keep_the_input_device():
    # the meta device stands in for a GPU: a weight or shift tensor made
    # on the CPU does not mix with it
    bits = torch.zeros(5, 4, dtype=torch.bool, device='meta')
    indices = bits_to_indices(bits)
    assert indices.device.type == 'meta' and indices.shape == (5,)
    back = indices_to_bits(indices, 4)
    assert back.device.type == 'meta' and back.shape == (5, 4)


def test_a_zero_channel_takes_the_negative_code():
    # MAGVIT-v2: where(z > 0, s, -s); the by-hand reference reads the same
    lfq = LookupFreeQuantizer(3, scale=0.5, entropy_groups=1).eval()
    z = torch.tensor([[0., 1., -1.], [0., 0., 0.], [2., 0., 3.]])
    out = lfq(z.t().reshape(1, 3, 1, 3))
    codes, index = codes_by_hand(z, lfq)
    assert out.indices.flatten().tolist() == [0b010, 0, 0b101]
    assert torch.equal(out.indices.flatten(), index[:, 0])
    assert torch.equal(_tokens(out.quantized).double(), codes)


def test_codes_keep_the_latents_low_precision_dtype():
    lfq = LookupFreeQuantizer(3, scale=0.3, entropy_groups=1).eval()
    z = torch.tensor([0.5, -2.0, 1.0]).view(1, 3, 1, 1).to(torch.bfloat16)
    quantized = lfq(z).quantized
    assert quantized.dtype == torch.bfloat16
    want = torch.tensor([0.3, -0.3, 0.3]).to(torch.bfloat16)
    assert torch.equal(quantized.flatten(), want)


def test_zero_entropy_weight_leaves_the_penalty_out():
    lfq = LookupFreeQuantizer(4, entropy_weight=0.0, entropy_groups=2)
    losses = lfq.train()(torch.randn(1, 4, 2, 2)).losses
    assert set(losses) == {'loss_commit'}


def test_forward_metrics_are_the_batch_usage_and_perplexity():
    # four tokens on codes 0b00, 0b11, 0b11, 0b01 of 2^2
    lfq = LookupFreeQuantizer(2, entropy_groups=1).eval()
    z = torch.tensor([[-1., -1.], [1., 1.], [2., 3.], [-1., 1.]])
    out = lfq(z.t().reshape(1, 2, 2, 2))
    assert out.indices.flatten().tolist() == [0, 3, 3, 1]
    probs = torch.tensor([0.25, 0.5, 0.25])
    assert out.metrics['usage'].item() == pytest.approx(3 / 4)
    assert out.metrics['perplexity'].item() == pytest.approx(
        math.exp(_entropy(probs).item()), rel=1e-6)


def test_default_window_declares_codes_dead_after_100_steps():
    assert steps_until_dead(LookupFreeQuantizer(1, entropy_groups=1)) == 100


def test_stats_window_argument_sets_when_codes_die():
    lfq = LookupFreeQuantizer(1, entropy_groups=1, stats_window=4)
    assert steps_until_dead(lfq) == 4


def test_checkpoint_holds_usage_statistics_not_the_sign_codebook():
    # the group codebook follows from embed_dim and scale
    lfq = LookupFreeQuantizer(4, entropy_groups=2)
    assert set(lfq.state_dict()) == {
        'usage.window_counts', 'usage.last_hit', 'usage.step'}


def _group_entropy(flat, scale, temperature, gamma, groups):
    """Per-sample minus gamma * codebook entropy, summed over the bit
    groups, by a softmax over every code of a group; the codebook entropy
    as entropy_loss takes it, -sum a log(a + 1e-5)."""
    size = flat.shape[1] // groups
    codes = torch.tensor(list(itertools.product([-scale, scale],
                                                repeat=size)),
                         dtype=flat.dtype)
    total = 0.
    for part in flat.split(size, dim=1):
        probs = F.softmax(-torch.cdist(part, codes) ** 2 / temperature, -1)
        avg = probs.mean(0)
        codebook = -(avg * torch.log(avg + 1e-5)).sum()
        total = total + _entropy(probs).mean() - gamma * codebook
    return total


def test_defaults_are_the_documented_ones():
    # docstring: 18 bits in 2 groups, scale 1, beta 0.25, entropy weight
    # 0.1 at temperature 0.01, diversity weight 1
    assert LookupFreeQuantizer(2, entropy_groups=1).codebook_size == 4
    lfq = LookupFreeQuantizer().train()
    assert (lfq.embed_dim, lfq.in_channels) == (18, 18)
    assert lfq.codebook_size == 2 ** 18
    rng = torch.Generator().manual_seed(0)
    # small latents: the soft assignment at T = 0.01 is far from one-hot
    z = 0.005 * torch.randn(1, 18, 2, 3, generator=rng, dtype=torch.float64)
    out = lfq(z)
    flat = _tokens(z)
    assert torch.equal(_tokens(out.quantized), flat.sign())
    commit = 0.25 * ((flat - flat.sign()) ** 2).mean()
    assert out.losses['loss_commit'].item() == pytest.approx(commit.item(),
                                                            rel=1e-9)
    entropy = 0.1 * _group_entropy(flat, 1.0, 0.01, 1.0, groups=2)
    assert out.losses['loss_entropy'].item() == pytest.approx(
        entropy.item(), rel=1e-6)
