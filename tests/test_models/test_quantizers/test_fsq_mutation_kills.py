"""FSQ values that mutation testing showed no test pinned down
(docs/testing.md lists the mutants these tests kill).

Reference values are worked by hand from the FSQ formulas
(Mentzer et al. 2023): for ``L`` levels the bound is
``tanh(z + shift) * h - offset`` with ``h = (L - 1)(1 - eps) / 2``,
``offset = 0.5`` for even ``L`` (0 for odd) and ``shift = atanh(offset / h)``.
"""
import math

import pytest
import torch
from three_code_checks import (
    check_batch_usage_and_perplexity,
    check_codes_die_after_4_steps,
    check_codes_die_after_100_steps,
)

from fqzoo.models.quantizers import FSQ


@pytest.mark.parametrize('levels', [3, 5, 8])
def test_bound_stays_just_inside_the_outer_levels(levels):
    fsq = FSQ(levels=(levels,))
    h = (levels - 1) * (1 - 1e-3) / 2
    offset = 0.5 if levels % 2 == 0 else 0.0
    ends = fsq.bound(torch.tensor([[-50.], [50.]])).view(-1)
    # tanh(+-50) is +-1 in float32: the ends are -h - offset and h - offset.
    assert torch.allclose(ends, torch.tensor([-h - offset, h - offset]))
    lowest, highest = -(levels // 2), (levels - 1) // 2
    assert lowest < ends[0] and ends[1] < highest


@pytest.mark.parametrize('levels', [3, 4, 8])
def test_zero_latent_is_the_centre_code(levels):
    fsq = FSQ(levels=(levels,)).eval()
    assert fsq.bound(torch.zeros(1, 1)).abs().item() < 1e-6
    assert fsq(torch.zeros(1, 1, 1, 1)).quantized.item() == 0


def test_straight_through_gradient_at_zero():
    # Odd L: d bound / dz at 0 is h; the code is bound / (L // 2).
    fsq = FSQ(levels=(5,))
    z = torch.zeros(1, 1, 1, 1, requires_grad=True)
    fsq(z).quantized.sum().backward()
    assert math.isclose(z.grad.item(), 2 * (1 - 1e-3) / 2, rel_tol=1e-6)


def test_forward_metrics_are_the_batch_usage_and_perplexity():
    check_batch_usage_and_perplexity(FSQ(levels=(3,)))


def test_default_window_declares_codes_dead_after_100_steps():
    check_codes_die_after_100_steps(FSQ(levels=(3,)))


def test_stats_window_argument_sets_when_codes_die():
    check_codes_die_after_4_steps(FSQ(levels=(3,), stats_window=4))


def test_checkpoint_holds_usage_statistics_not_the_grid():
    # levels, basis and half_width follow from the config: a checkpoint that
    # saved them could not be loaded into an FSQ with other levels.
    assert set(FSQ(levels=(8, 5)).state_dict()) == {
        'usage.window_counts', 'usage.last_hit', 'usage.step'}


def test_codes_to_indices_keeps_leading_dimensions():
    fsq = FSQ(levels=(4, 3))
    indices = torch.arange(12).view(2, 3, 2)
    codes = fsq.indices_to_codes(indices)
    assert codes.shape == (2, 3, 2, 2)
    assert torch.equal(fsq.codes_to_indices(codes), indices)
    # index = digit_0 + 4 * digit_1, digits from the codes in [-1, 1]
    assert fsq.indices_to_codes(torch.tensor(7)).tolist() == [0.5, 0.0]
