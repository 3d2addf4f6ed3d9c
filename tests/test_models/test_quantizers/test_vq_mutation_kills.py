"""VectorQuantizer behaviour that mutation testing showed no test pinned
down (docs/testing.md lists the mutants these tests kill).

References are worked out another way: the defaults are the module
docstring's (LlamaGen's 16384 codes of 8 dims, l2-normalised), losses and
the EMA step are hand formulas, the usage window follows
:class:`CodeUsage`'s docstring, and a one-dimensional VQ with the codes
-1, 0, 1 picks its code by hand (``z << 0``: code 0, ``z >> 0``: code 2).
"""
import math

import pytest
import torch
import torch.nn.functional as F
from three_code_checks import _feed, check_codes_die_after_100_steps

import fqzoo.models.quantizers.vq as vq_module
from fqzoo.models.quantizers import VectorQuantizer


def three_codes(**kwargs) -> VectorQuantizer:
    """Codes -1, 0, 1 in one dimension, no normalisation."""
    vq = VectorQuantizer(3, 1, l2_norm=False, **kwargs)
    with torch.no_grad():
        vq.embedding.weight.copy_(torch.tensor([[-1.], [0.], [1.]]))
    return vq


def two_codes() -> VectorQuantizer:
    """Default options, codes (3, 0) and (0, 0.1): the token (0.5, 0.4) is
    closest to code 1 in Euclidean distance (0.34 vs 6.41) but to code 0 in
    cosine similarity (0.78 vs 0.62)."""
    vq = VectorQuantizer(2, 2)
    with torch.no_grad():
        vq.embedding.weight.copy_(torch.tensor([[3., 0.], [0., 0.1]]))
    return vq


TOKEN = torch.tensor([0.5, 0.4]).view(1, 2, 1, 1)


def test_defaults_are_16384_codes_of_8_dims():
    vq = VectorQuantizer()
    assert (vq.codebook_size, vq.embed_dim, vq.in_channels) == (16384, 8, 8)
    assert vq.embedding.weight.shape == (16384, 8)


def test_default_lookup_is_by_cosine_similarity_onto_unit_codes():
    out = two_codes().eval()(TOKEN)
    assert out.indices.flatten().tolist() == [0]
    torch.testing.assert_close(out.quantized.flatten(),
                               torch.tensor([1., 0.]))


def test_default_commitment_weight_is_a_quarter():
    out = two_codes().train()(TOKEN)
    u = torch.tensor([0.5, 0.4]) / math.hypot(0.5, 0.4)
    mse = ((u[0] - 1) ** 2 + u[1] ** 2).item() / 2
    assert out.losses['loss_commit'].item() == pytest.approx(0.25 * mse)
    assert out.losses['loss_codebook'].item() == pytest.approx(mse)


def test_default_entropy_temperature_makes_soft_assignments_hard():
    """Codes e0, e1 and one token on each: at T = 0.01 each token's soft
    assignment is one-hot (entropy e^-100 * 100 ~ 0) and the mean is
    (1/2, 1/2), so the loss is 0 - log 2 (T = 1 would give -0.11)."""
    vq = VectorQuantizer(2, 2, entropy_weight=1.0).train()
    with torch.no_grad():
        vq.embedding.weight.copy_(torch.eye(2))
    z = torch.eye(2).view(1, 2, 1, 2)
    loss = vq(z).losses['loss_entropy'].item()
    assert loss == pytest.approx(-math.log(2), abs=1e-4)
    assert 'loss_entropy' not in VectorQuantizer(2, 2).train()(z).losses


def test_default_ema_decay_and_smoothing_by_hand():
    """One token (3, 0.5) on code 0 of the codes (1, 0), (0, 1): counts
    N = 0.99 * 1 + 0.01 * n, sums m = 0.99 * e + 0.01 * s, codes
    m / ((N + 1e-5) / (sum N + 2e-5) * sum N)."""
    vq = VectorQuantizer(2, 2, l2_norm=False, ema=True).double().train()
    codes = torch.eye(2, dtype=torch.float64)
    with torch.no_grad():
        vq.embedding.weight.copy_(codes)
        vq.ema_sum.copy_(codes)
    vq(torch.tensor([3., 0.5], dtype=torch.float64).view(1, 2, 1, 1))
    count = torch.tensor([0.99 + 0.01, 0.99], dtype=torch.float64)
    sums = 0.99 * codes + 0.01 * torch.tensor(
        [[3., 0.5], [0., 0.]], dtype=torch.float64)
    total = count.sum()
    smoothed = (count + 1e-5) / (total + 2e-5) * total
    torch.testing.assert_close(vq.embedding.weight, sums / smoothed[:, None])


def test_kmeans_init_runs_ten_iterations_by_default(monkeypatch):
    calls = []

    def spy(x, num_clusters, iters=10, spherical=False):
        calls.append(iters)
        return kmeans(x, num_clusters, iters, spherical)

    kmeans = vq_module.kmeans
    monkeypatch.setattr(vq_module, 'kmeans', spy)
    torch.manual_seed(0)
    vq = VectorQuantizer(4, 2, kmeans_init=True).train()
    vq(torch.randn(1, 2, 4, 4))
    vq(torch.randn(1, 2, 4, 4))
    assert calls == [10]


def test_default_dead_code_steps_is_100_and_no_auto_restart():
    vq = three_codes()
    check_codes_die_after_100_steps(vq)
    _feed(vq, 10.)
    # dead codes stay where they are until restart_dead_codes is called
    assert vq.embedding.weight.flatten().tolist() == [-1., 0., 1.]
    assert vq.restart_dead_codes() == 2
    assert vq.embedding.weight.flatten().tolist() == [10., 10., 1.]


def test_default_stats_window_forgets_a_code_after_100_steps():
    """Window 100 in 10 buckets of 10 steps: after 100 steps the first is
    still counted, the 101st update clears its bucket."""
    vq = three_codes().train()
    _feed(vq, -10.)
    for _ in range(99):
        _feed(vq, 10.)
    assert vq.codebook_stats()[0]['usage'].item() == pytest.approx(2 / 3)
    _feed(vq, 10.)
    assert vq.codebook_stats()[0]['usage'].item() == pytest.approx(1 / 3)


def test_restart_before_any_training_batch_reseeds_nothing():
    """Resumed usage counters with dead codes, but no batch seen yet by this
    process: nothing to draw new codes from."""
    trained = three_codes(dead_code_steps=1).train()
    _feed(trained, 10.)
    resumed = three_codes(dead_code_steps=1)
    resumed.load_state_dict(trained.state_dict())
    assert resumed.codebook_stats()[0]['dead_codes'].item() == 2
    assert resumed.restart_dead_codes() == 0
    assert resumed.embedding.weight.flatten().tolist() == [-1., 0., 1.]


def test_default_init_is_uniform_within_one_over_k():
    torch.manual_seed(0)
    weight = VectorQuantizer(16, 8, l2_norm=False).embedding.weight
    bound = 1 / 16
    # 128 draws: each end of [-1/16, 1/16] is approached within 10 %
    assert weight.abs().max().item() <= bound
    assert weight.max().item() > 0.9 * bound
    assert weight.min().item() < -0.9 * bound


def test_init_range_sets_the_uniform_bound():
    torch.manual_seed(0)
    weight = VectorQuantizer(16, 8, l2_norm=False,
                             init_range=0.5).embedding.weight
    assert weight.abs().max().item() <= 0.5
    assert weight.max().item() > 0.45 and weight.min().item() < -0.45


def test_l2_norm_codes_start_on_the_unit_sphere_and_ema_from_there():
    """The stored codes are unit rows, so the EMA's first step moves a hit
    code to the direction of 0.5 e_k + 0.5 u (u: the unit token)."""
    torch.manual_seed(0)
    norms = VectorQuantizer(16, 8).embedding.weight.norm(dim=1)
    torch.testing.assert_close(norms, torch.ones(16))
    vq = VectorQuantizer(4, 2, ema=True, decay=0.5).train()
    codes = vq.codebook().detach().clone()
    token = torch.tensor([0.3, 0.8])
    u = F.normalize(token, dim=0)
    k = int((codes @ u).argmax())
    vq(token.view(1, 2, 1, 1))
    expected = codes.clone()
    expected[k] = F.normalize(0.5 * codes[k] + 0.5 * u, dim=0)
    torch.testing.assert_close(vq.codebook(), expected)
