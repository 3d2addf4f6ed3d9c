import math

import pytest
import torch

from fqzoo.models.quantizers import QuantizerOutput
from fqzoo.models.regularizers import DisentanglementRegularizer
from fqzoo.registry import REGULARIZERS


def qout(*branches):
    b, _, h, w = branches[0].shape
    return QuantizerOutput(torch.cat(branches, 1),
                           torch.zeros(b, len(branches), h, w,
                                       dtype=torch.long),
                           branches=list(branches))


def test_orthogonal_is_zero_identical_is_one():
    reg = REGULARIZERS.build(dict(type='DisentanglementRegularizer',
                                  weight=1.0))
    a = torch.zeros(2, 4, 3, 3)
    a[:, 0] = torch.rand(2, 3, 3) + 0.1
    b = torch.zeros(2, 4, 3, 3)
    b[:, 1] = -torch.rand(2, 3, 3) - 0.1
    assert reg(qout(a, b))['loss_disentangle'].abs() < 1e-7
    x = torch.randn(2, 4, 3, 3)
    assert torch.allclose(reg(qout(x, 3 * x))['loss_disentangle'],
                          torch.tensor(1.0))
    assert torch.allclose(reg(qout(x, -x))['loss_disentangle'],
                          torch.tensor(1.0))


def test_matches_hand_computation_with_weight_and_three_branches():
    # One position, 2 channels: q0 = (1, 0), q1 = (1, 1), q2 = (0, 1).
    # cos^2: (0, 1) -> 1/2, (0, 2) -> 0, (1, 2) -> 1/2; mean 1/3; x 0.1.
    q0 = torch.tensor([1., 0.]).view(1, 2, 1, 1)
    q1 = torch.tensor([1., 1.]).view(1, 2, 1, 1)
    q2 = torch.tensor([0., 1.]).view(1, 2, 1, 1)
    loss = DisentanglementRegularizer()(qout(q0, q1, q2))['loss_disentangle']
    assert math.isclose(loss.item(), 0.1 / 3, rel_tol=1e-6)


def test_mean_over_positions_and_branch_selection():
    # Position 0 identical (1), position 1 orthogonal (0): mean 0.5.
    a = torch.tensor([[1., 1.], [0., 0.]]).view(1, 2, 1, 2)
    b = torch.tensor([[1., 0.], [0., 1.]]).view(1, 2, 1, 2)
    reg = DisentanglementRegularizer(weight=1.0, branches=[0, 2])
    out = reg(qout(a, torch.randn(1, 2, 1, 2), b))['loss_disentangle']
    assert math.isclose(out.item(), 0.5, rel_tol=1e-6)


def test_gradient_and_single_branch_error():
    a = torch.randn(1, 4, 2, 2, requires_grad=True)
    b = torch.randn(1, 4, 2, 2)
    DisentanglementRegularizer()(qout(a, b))['loss_disentangle'].backward()
    assert a.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='two branches'):
        DisentanglementRegularizer()(qout(a.detach()))
