import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fqzoo.models.quantizers import QuantizerOutput
from fqzoo.models.regularizers import info_nce
from fqzoo.models.teachers import FrozenTeacher
from fqzoo.registry import MODELS, REGULARIZERS, TEACHERS


@TEACHERS.register_module(name='_TestTinyTeacher', force=True)
class TinyTeacher(FrozenTeacher):
    """A frozen random conv net (the frame every teacher shares)."""

    def __init__(self, embed_dim: int = 6) -> None:
        super().__init__((0.5, 0.5, 0.5), (0.25, 0.25, 0.25), img_size=8)
        self.net = nn.Sequential(nn.Conv2d(3, embed_dim, 3), nn.BatchNorm2d(
            embed_dim), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.embed_dim = embed_dim
        self.freeze()

    def features(self, x):
        return self.net(x)


def test_info_nce_matches_cross_entropy_on_similarity_matrix():
    rng = torch.Generator().manual_seed(0)
    pred, target = torch.randn(5, 7, generator=rng), torch.randn(5, 7,
                                                                 generator=rng)
    sim = F.normalize(pred, dim=1) @ F.normalize(target, dim=1).t()
    for tau in (1.0, 0.1):
        ref = F.cross_entropy(sim / tau, torch.arange(5))
        assert torch.allclose(info_nce(pred, target, tau), ref, atol=1e-6)


def test_info_nce_hand_made_two_by_two():
    # Orthonormal targets, predictions equal to them: logits = identity,
    # loss = -log(e / (e + 1)).
    pred = torch.tensor([[2., 0.], [0., 3.]])
    target = torch.tensor([[1., 0.], [0., 1.]])
    expected = -torch.log(torch.tensor(torch.e / (torch.e + 1)))
    assert torch.allclose(info_nce(pred, target), expected)
    # Swapped predictions: loss = -log(1 / (e + 1)).
    assert torch.allclose(info_nce(pred.flip(0), target),
                          torch.log(torch.tensor(torch.e + 1)))


def reg_cfg(**kwargs):
    cfg = dict(type='SemanticRegularizer', branch=1,
               teacher=dict(type='_TestTinyTeacher'),
               head=dict(type='FeaturePredictionHead', in_channels=4,
                         width=6, num_layers=1, num_heads=2, grid_size=2))
    cfg.update(kwargs)
    return cfg


def qout(b=4):
    branches = [torch.randn(b, 4, 2, 2), torch.randn(b, 4, 2, 2)]
    return QuantizerOutput(torch.cat(branches, 1),
                           torch.zeros(b, 2, 2, 2, dtype=torch.long),
                           branches=branches)


def test_loss_key_value_and_gradient_to_the_branch():
    reg = REGULARIZERS.build(reg_cfg(weight=0.5))
    q = qout()
    q.branches[1].requires_grad_(True)
    images = torch.rand(4, 3, 16, 16) * 2 - 1
    out = reg(q, images)
    assert set(out) == {'loss_semantic_1'}
    pred = reg.head(q.branches[1])
    expected = 0.5 * info_nce(pred, reg.teacher(images))
    assert torch.allclose(out['loss_semantic_1'], expected, atol=1e-6)
    out['loss_semantic_1'].backward()
    assert q.branches[1].grad.abs().sum() > 0
    named = REGULARIZERS.build(reg_cfg(name='clip', loss='cosine'))
    assert set(named(qout(), images)) == {'loss_semantic_clip'}


def test_teacher_is_lazy_frozen_and_outside_the_state_dict():
    reg = REGULARIZERS.build(reg_cfg())
    assert reg.teacher is None
    assert all(k.startswith('head.') for k in reg.state_dict())
    reg(qout(), torch.zeros(4, 3, 8, 8))
    teacher = reg.teacher
    assert isinstance(teacher, TinyTeacher)
    assert all(k.startswith('head.') for k in reg.state_dict())
    assert all(p is not q for p in reg.parameters()
               for q in teacher.parameters())
    reg.train()
    teacher.train()
    assert not teacher.training and not teacher.net[1].training
    assert not any(p.requires_grad for p in teacher.parameters())
    assert teacher(torch.zeros(2, 3, 8, 8)).requires_grad is False


def test_teacher_unchanged_after_a_train_step():
    model = MODELS.build(dict(
        type='ImageTokenizer',
        encoder=dict(type='VQGANEncoder', ch=8, ch_mult=(1, 2),
                     num_res_blocks=1, z_channels=8),
        decoder=dict(type='VQGANDecoder', ch=8, ch_mult=(1, 2),
                     num_res_blocks=1, z_channels=8),
        quantizer=dict(type='FactorizedQuantizer', num_codebooks=2,
                       quantizer=dict(type='VectorQuantizer',
                                      codebook_size=16, embed_dim=4)),
        regularizers=[dict(type='DisentanglementRegularizer'),
                      reg_cfg(head=dict(type='FeaturePredictionHead',
                                        in_channels=4, width=6, num_layers=1,
                                        num_heads=2, grid_size=4))]))
    reg = model.regularizers[1]
    teacher = reg.build_teacher()
    before = copy.deepcopy(teacher.state_dict())
    head_before = copy.deepcopy(reg.head.state_dict())
    model.init_weights()
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = model(torch.rand(4, 3, 8, 8) * 2 - 1, mode='loss')
    assert {'loss_disentangle', 'loss_semantic_1'} <= set(losses)
    sum(losses.values()).backward()
    opt.step()
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert any(not torch.equal(v, head_before[k])
               for k, v in reg.head.state_dict().items())


def test_errors():
    with pytest.raises(KeyError, match='Unknown teacher type'):
        REGULARIZERS.build(reg_cfg(teacher=dict(type='NoSuchTeacher')))
    with pytest.raises(ValueError, match='loss must be'):
        REGULARIZERS.build(reg_cfg(loss='l2'))
    reg = REGULARIZERS.build(reg_cfg(teacher=dict(type='_TestTinyTeacher',
                                                  embed_dim=5)))
    with pytest.raises(ValueError, match='embed_dim'):
        reg(qout(), torch.zeros(4, 3, 8, 8))
