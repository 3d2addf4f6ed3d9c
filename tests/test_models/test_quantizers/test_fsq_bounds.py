"""FSQ's bound and rounding at and near the level boundaries, odd and even
levels.

Reference followed: the FSQ paper (Mentzer et al. 2023, arXiv 2309.15505,
appendix A.1): ``bound(z) = tanh(z + shift) * h - offset`` with half width
``h = (L - 1) * (1 - eps) / 2`` (strictly inside the outer rounding
boundaries), ``offset = 0.5`` for even ``L`` (else 0) and ``shift =
atanh(offset / h)``. The paper's listing writes ``tan`` for the shift;
fqzoo uses ``atanh``, which is what makes ``bound(0) = 0`` (as
vector-quantize-pytorch does). fqzoo does **not** follow
vector-quantize-pytorch's ``h = (L - 1) * (1 + eps) / 2``. With ``1 - eps``
an even level needs ``h > offset``, so ``L = 2`` has no bound (``atanh`` of a
number above 1) and is rejected.
"""
import math

import pytest
import torch

from fqzoo.models.quantizers import FSQ

EPS = 1e-3
LEVELS = (3, 4, 5, 8)


def _half_offset_shift(level):
    half = (level - 1) * (1 - EPS) / 2
    offset = 0.5 if level % 2 == 0 else 0.0
    return half, offset, math.atanh(offset / half)


def _z_for(level, bounded):
    """The ``z`` whose bound is ``bounded``, inverting the formula."""
    half, offset, shift = _half_offset_shift(level)
    return math.atanh((bounded + offset) / half) - shift


def _quantize(fsq, values):
    """Run ``values`` (one per token) through every channel of ``fsq``."""
    z = torch.tensor(values, dtype=torch.float64)
    z = z.view(1, 1, -1, 1).expand(1, fsq.embed_dim, -1, 1).contiguous()
    out = fsq.eval()(z)
    return out.quantized[0, :, :, 0], out.indices[0, 0, :, 0]


@pytest.mark.parametrize('level', LEVELS)
def test_bound_saturates_at_the_paper_half_width(level):
    """Far out, tanh is +-1 and the bound is ``+-h - offset``: (1 - eps)
    keeps it inside the outer levels' rounding cells."""
    half, offset, _ = _half_offset_shift(level)
    fsq = FSQ(levels=(level,), eps=EPS)
    got = fsq.bound(torch.tensor([[-40.0], [40.0]], dtype=torch.float64))
    assert got.flatten().tolist() == pytest.approx(
        [-half - offset, half - offset], abs=1e-7)
    assert abs(got).max() < level / 2


@pytest.mark.parametrize('level', LEVELS)
def test_zero_maps_to_the_middle_level(level):
    """``atanh`` shift: ``bound(0) = 0`` exactly (the paper's ``tan``
    would leave an offset for even levels)."""
    fsq = FSQ(levels=(level,), eps=EPS)
    assert fsq.bound(torch.zeros(1, 1, dtype=torch.float64)).item() == \
        pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize('level', LEVELS)
def test_rounding_cells_near_each_boundary(level):
    """For every boundary ``k + 1/2`` between two integer levels, a z just
    below it gives level k and just above gives k + 1; the centre of every
    cell gives its level exactly. Codes are ``k / (L // 2)``; index digits
    ``k + L // 2``."""
    low, high = -(level // 2), (level - 1) // 2
    fsq = FSQ(levels=(level,), eps=EPS)
    below, above, centres = [], [], []
    for k in range(low, high):
        boundary = _z_for(level, k + 0.5)
        below.append(boundary - 1e-4)
        above.append(boundary + 1e-4)
    for k in range(low + 1, high):
        centres.append(_z_for(level, k))
    codes, indices = _quantize(fsq, below + above + centres)
    want = (list(range(low, high)) + list(range(low + 1, high + 1))
            + list(range(low + 1, high)))
    width = level // 2
    assert codes[0].tolist() == pytest.approx([k / width for k in want],
                                              abs=1e-12)
    assert indices.tolist() == [k + width for k in want]


@pytest.mark.parametrize('level', LEVELS)
def test_outer_levels_are_reached_and_never_passed(level):
    fsq = FSQ(levels=(level,), eps=EPS)
    codes, indices = _quantize(fsq, [-1e4, -40.0, 40.0, 1e4])
    width = level // 2
    top = ((level - 1) // 2) / width  # 1 for odd L, (L/2 - 1)/(L/2) even
    assert codes[0].tolist() == [-1.0, -1.0, top, top]
    assert indices.tolist() == [0, 0, level - 1, level - 1]


def test_straight_through_gradient_is_the_bound_derivative():
    """d code / d z = (1 - tanh^2(z + shift)) * h / (L // 2): rounding
    passes the gradient through unchanged."""
    levels = (3, 4, 5, 8)
    fsq = FSQ(levels=levels, eps=EPS)
    z = torch.tensor([0.3, -0.7, 1.1, 0.05],
                     dtype=torch.float64).view(1, 4, 1, 1).requires_grad_()
    (grad,) = torch.autograd.grad(fsq(z).quantized.sum(), z)
    want = []
    for level, value in zip(levels, z.flatten().tolist()):
        half, _, shift = _half_offset_shift(level)
        want.append((1 - math.tanh(value + shift) ** 2) * half
                    / (level // 2))
    assert grad.flatten().tolist() == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize('levels', [(2, 5), (5, 1)])
def test_levels_below_three_are_rejected(levels):
    bad = min(levels)
    with pytest.raises(ValueError, match=f'level {bad} .*at least 3'):
        FSQ(levels=levels)
