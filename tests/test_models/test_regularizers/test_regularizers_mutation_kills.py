"""Semantic regularizer behaviour that mutation testing showed no test
pinned down (docs/testing.md lists the mutants these tests kill)."""
import math
import re

import pytest
import torch
from torch import nn

from fqzoo.errors import InputKeyError
from fqzoo.models.quantizers import QuantizerOutput
from fqzoo.models.regularizers import SemanticRegularizer, cosine_distance
from fqzoo.registry import TEACHERS, known_names


class MeanTeacher(nn.Module):
    """Global feature = a fixed linear map of the per-channel image mean."""

    def __init__(self, embed_dim: int = 2) -> None:
        super().__init__()
        self.proj = nn.Linear(3, embed_dim, bias=False)
        with torch.no_grad():
            self.proj.weight.copy_(torch.arange(
                3 * embed_dim, dtype=torch.float).view(embed_dim, 3) - 2.5)

    def forward(self, images):
        return self.proj(images.mean((2, 3)))


class MeanHead(nn.Module):
    """Prediction = the branch's per-channel mean (width = its channels)."""

    def __init__(self, dtype=None) -> None:
        super().__init__()
        self.dtype = dtype

    def forward(self, x):
        out = x.mean((2, 3))
        return out if self.dtype is None else out.to(self.dtype)


def branches_out(pred):
    """A QuantizerOutput whose branch 0 has per-channel means ``pred``."""
    b, c = pred.shape
    branch = pred.view(b, c, 1, 1).expand(b, c, 2, 2).contiguous()
    return QuantizerOutput(branch, torch.zeros(b, 1, 2, 2, dtype=torch.long),
                           branches=[branch])


def images_with_means(means):
    """``[B, 3, 2, 2]`` images whose per-channel means are ``means``."""
    b = means.shape[0]
    offsets = torch.tensor([[0.5, -0.5], [-0.5, 0.5]])
    return means.view(b, 3, 1, 1) + offsets


def info_nce_by_hand(pred, target, tau):
    """Cross-entropy of row b over cos(pred_b, target_j) / tau."""
    total = 0.0
    for b in range(len(pred)):
        logits = [float(torch.dot(pred[b], t) / pred[b].norm() / t.norm())
                  / tau for t in target]
        total += math.log(sum(math.exp(v) for v in logits)) - logits[b]
    return total / len(pred)


def test_cosine_distance_by_hand():
    # Three rows of two channels: cosines 1, 0, 0 -> mean(1 - cos) = 2/3.
    pred = torch.tensor([[2., 0.], [0., 1.], [1., 1.]])
    target = torch.tensor([[1., 0.], [3., 0.], [1., -1.]])
    assert torch.allclose(cosine_distance(pred, target),
                          torch.tensor(2 / 3))
    # Opposite rows: distance 2; a positively scaled copy: 0.
    assert torch.allclose(cosine_distance(pred, -pred), torch.tensor(2.))
    assert torch.allclose(cosine_distance(pred, 3 * pred), torch.tensor(0.),
                          atol=1e-6)


def test_cosine_loss_of_the_regularizer_by_hand():
    teacher = MeanTeacher()
    reg = SemanticRegularizer(0, teacher, MeanHead(), loss='cosine',
                              weight=0.25)
    pred = torch.tensor([[1., 2.], [-1., 0.5], [0.3, -2.]])
    means = torch.tensor([[0.2, -0.4, 0.9], [1., 0.1, -0.3],
                          [-0.6, 0.8, 0.05]])
    target = means @ teacher.proj.weight.detach().t()
    expected = sum(1 - float(torch.dot(p, t) / p.norm() / t.norm())
                   for p, t in zip(pred, target)) / 3
    out = reg(branches_out(pred), images_with_means(means))
    assert torch.allclose(out['loss_semantic_0'],
                          torch.tensor(0.25 * expected), atol=1e-6)


def test_defaults_infonce_temperature_one_weight_half():
    pred = torch.tensor([[1., 2.], [-1., 0.5], [0.3, -2.]])
    means = torch.tensor([[0.2, -0.4, 0.9], [1., 0.1, -0.3],
                          [-0.6, 0.8, 0.05]])
    teacher = MeanTeacher()
    target = means @ teacher.proj.weight.detach().t()
    reg = SemanticRegularizer(0, teacher, MeanHead())
    assert (reg.loss, reg.temperature, reg.weight) == ('infonce', 1.0, 0.5)
    out = reg(branches_out(pred), images_with_means(means))
    expected = 0.5 * info_nce_by_hand(pred, target, 1.0)
    assert torch.allclose(out['loss_semantic_0'], torch.tensor(expected),
                          atol=1e-6)


def test_temperature_reaches_the_infonce_loss():
    pred = torch.tensor([[1., 2.], [-1., 0.5], [0.3, -2.]])
    means = torch.tensor([[0.2, -0.4, 0.9], [1., 0.1, -0.3],
                          [-0.6, 0.8, 0.05]])
    teacher = MeanTeacher()
    target = means @ teacher.proj.weight.detach().t()
    reg = SemanticRegularizer(0, teacher, MeanHead(), temperature=0.2,
                              weight=1.0)
    out = reg(branches_out(pred), images_with_means(means))
    expected = info_nce_by_hand(pred, target, 0.2)
    assert abs(expected - info_nce_by_hand(pred, target, 1.0)) > 0.1
    assert torch.allclose(out['loss_semantic_0'], torch.tensor(expected),
                          atol=1e-5)


def test_target_is_cast_to_the_prediction_dtype():
    # A bfloat16 head: the teacher's float32 feature is rounded to bfloat16
    # before the loss, which is computed in float32.
    pred = torch.tensor([[1., 2.], [-1., 0.5], [0.3, -2.]])
    means = torch.tensor([[0.2, -0.4, 0.9], [1., 0.1, -0.3],
                          [-0.6, 0.8, 0.05]])
    teacher = MeanTeacher()
    target = means @ teacher.proj.weight.detach().t()
    rounded = target.to(torch.bfloat16).float()
    reg = SemanticRegularizer(0, teacher, MeanHead(torch.bfloat16),
                              loss='cosine', weight=1.0)
    value = reg(branches_out(pred), images_with_means(means))[
        'loss_semantic_0']
    assert value.dtype == torch.float32
    p = pred.to(torch.bfloat16).float()
    ref_rounded = cosine_distance(p, rounded)
    ref_exact = cosine_distance(p, target)
    assert abs(ref_rounded - ref_exact) > 1e-5
    assert torch.allclose(value, ref_rounded, rtol=0, atol=1e-7)


def test_head_and_teacher_modules_are_used_as_given():
    head, teacher = MeanHead(), MeanTeacher()
    teacher.train()
    reg = SemanticRegularizer(0, teacher, head)
    assert reg.head is head
    assert reg.build_teacher() is teacher
    assert not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())


def test_build_teacher_moves_it_to_the_device_given():
    reg = SemanticRegularizer(0, MeanTeacher(), MeanHead())
    teacher = reg.build_teacher()
    assert teacher.proj.weight.device.type == 'cpu'
    assert reg.build_teacher('meta') is teacher
    assert teacher.proj.weight.device.type == 'meta'


def test_forward_puts_the_teacher_on_the_images_device():
    reg = SemanticRegularizer(0, MeanTeacher(), MeanHead())
    pred = torch.randn(3, 2, device='meta')
    out = reg(branches_out(pred), torch.randn(3, 3, 2, 2, device='meta'))
    assert reg.teacher.proj.weight.device.type == 'meta'
    assert out['loss_semantic_0'].device.type == 'meta'


def test_unknown_teacher_error_lists_the_known_types():
    names = known_names(TEACHERS)
    assert len(names) > 1
    with pytest.raises(InputKeyError, match=re.escape(
            'Unknown teacher type "NoSuch". Known teacher types: '
            + ', '.join(names))):
        SemanticRegularizer(0, dict(type='NoSuch'), MeanHead())


def test_width_mismatch_error_names_both_widths_and_the_teacher():
    # Batch 4, head width 3, teacher width 2: every number differs.
    reg = SemanticRegularizer(0, MeanTeacher(2), MeanHead(), name='clip')
    q = branches_out(torch.randn(4, 3))
    with pytest.raises(ValueError, match=re.escape(
            'loss_semantic_clip: the head predicts 3-d features, the '
            'teacher MeanTeacher gives 2-d ones: set the head width to the '
            'teacher embed_dim')):
        reg(q, torch.randn(4, 3, 2, 2))
