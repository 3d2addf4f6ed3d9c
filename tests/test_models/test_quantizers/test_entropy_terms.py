"""LFQ and BSQ entropy penalties against their papers' formulas, with the
reference computed by direct enumeration of all ``2^D`` codes.

Both penalties are ``E_z[H(q(c | z))] - gamma * H(E_z[q(c | z)])``:

- LFQ (MAGVIT-v2, Yu et al. 2023, arXiv 2310.05737): ``q(c | z) ~
  exp(-|z - c|^2 / T)`` over ``c in {-s, s}^D``. With the bits split into
  groups (Open-MAGVIT2), the codebook term is the sum of the groups'
  marginal entropies.
- BSQ (Zhao et al. 2024, arXiv 2406.07548): ``u = z / |z|``, ``q(c | u) ~
  exp(<c, u> / T)`` over ``c in {-1/sqrt(D), 1/sqrt(D)}^D``; the codebook
  term is the paper's factorised approximation, the sum over channels of
  the entropy of the mean per-channel marginal.
"""
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from fqzoo.models.quantizers import BSQ, LookupFreeQuantizer


def _all_codes(dim, scale):
    """Every code of ``{-scale, scale}^dim``, index = its bits read most
    significant first (bit 1 = +scale)."""
    return torch.tensor(list(itertools.product([-scale, scale], repeat=dim)),
                        dtype=torch.float64)


def _entropy(probs):
    return -torch.special.xlogy(probs, probs).sum(-1)


def _tokens(z):
    return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])


def _latent(dim, seed):
    rng = torch.Generator().manual_seed(seed)
    return torch.randn(2, dim, 3, 3, generator=rng,
                       dtype=torch.float64).requires_grad_()


@pytest.mark.parametrize('groups', [1, 2])
def test_lfq_entropy_by_enumeration(groups):
    dim, scale, temperature, weight, gamma = 4, 1.3, 2.0, 0.5, 0.8
    lfq = LookupFreeQuantizer(
        dim, scale=scale, entropy_weight=weight,
        entropy_temperature=temperature, diversity_weight=gamma,
        entropy_groups=groups).train()
    z = _latent(dim, seed=0)
    out = lfq(z)

    flat = _tokens(z)
    codes = _all_codes(dim, scale)
    probs = F.softmax(-torch.cdist(flat, codes) ** 2 / temperature, dim=-1)
    sample = _entropy(probs).mean()
    avg = probs.mean(0)
    # group g holds bits g * D/G ... : the index's high bits come first
    size = 2 ** (dim // groups)
    per_group = avg.reshape([size] * groups)
    codebook = sum(
        _entropy(per_group.movedim(g, 0).reshape(size, -1).sum(1))
        for g in range(groups))
    if groups > 1:  # the factorised term bounds the joint entropy above
        assert codebook > _entropy(avg) + 1e-3
    want = weight * (sample - gamma * codebook)

    got = out.losses['loss_entropy']
    # the codebook entropy is taken as -sum a log(a + 1e-5)
    assert got.item() == pytest.approx(want.item(), abs=weight * 16 * 1e-5)
    (grad_got,) = torch.autograd.grad(got, z)
    (grad_want,) = torch.autograd.grad(want, z)
    torch.testing.assert_close(grad_got, grad_want, rtol=1e-3, atol=1e-7)
    # the hard code is the most probable one, index in the same order
    assert torch.equal(out.indices.flatten(), probs.argmax(1))


def test_bsq_entropy_by_enumeration():
    dim, temperature, weight, gamma = 4, 0.4, 0.5, 0.8
    bsq = BSQ(dim, entropy_weight=weight, entropy_temperature=temperature,
              diversity_weight=gamma).train()
    z = _latent(dim, seed=1)
    out = bsq(z)

    u = F.normalize(_tokens(z), dim=-1)
    codes = _all_codes(dim, 1 / math.sqrt(dim))
    probs = F.softmax(u @ codes.t() / temperature, dim=-1)
    sample = _entropy(probs).mean()
    avg = probs.mean(0)
    # P(bit d = 1) under the mean assignment: mass of the codes with c_d > 0
    marginals = avg @ (codes > 0).double()
    codebook = _entropy(torch.stack([marginals, 1 - marginals], -1)).sum()
    assert codebook > _entropy(avg) + 1e-3  # an upper bound of the exact
    want = weight * (sample - gamma * codebook)

    got = out.losses['loss_entropy']
    assert got.item() == pytest.approx(want.item(), rel=1e-9)
    (grad_got,) = torch.autograd.grad(got, z)
    (grad_want,) = torch.autograd.grad(want, z)
    torch.testing.assert_close(grad_got, grad_want)
    assert torch.equal(out.indices.flatten(), probs.argmax(1))
    torch.testing.assert_close(_tokens(out.quantized.detach()),
                               codes[probs.argmax(1)], rtol=0, atol=1e-15)


def test_lfq_and_bsq_commitment_against_hand_formula():
    """``beta * mean((x - sg(c))^2)`` with x = z for LFQ and z / |z| for
    BSQ, c the sign code."""
    z = _latent(4, seed=2)
    flat = _tokens(z).detach()
    lfq = LookupFreeQuantizer(4, scale=0.5, beta=0.3, entropy_groups=1)
    want = 0.3 * ((flat - 0.5 * flat.sign()) ** 2).mean()
    assert lfq.train()(z).losses['loss_commit'].item() == pytest.approx(
        want.item(), rel=1e-12)
    u = F.normalize(flat, dim=-1)
    want = 0.3 * ((u - u.sign() / 2) ** 2).mean()
    assert BSQ(4, beta=0.3).train()(z).losses['loss_commit'].item() == \
        pytest.approx(want.item(), rel=1e-12)
