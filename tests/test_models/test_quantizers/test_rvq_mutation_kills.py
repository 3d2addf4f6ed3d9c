"""ResidualVQ behaviour that mutation testing showed no test pinned down
(docs/testing.md lists the mutants these tests kill)."""
import pytest
import torch

from fqzoo.errors import InputError
from fqzoo.models.quantizers import ResidualVQ, VectorQuantizer

LEVEL = dict(type='VectorQuantizer', codebook_size=16, embed_dim=4,
             l2_norm=False)


def test_defaults_are_four_levels_of_1024_unnormalised_codes():
    rvq = ResidualVQ()
    assert rvq.depth == rvq.num_codebooks == len(rvq.levels()) == 4
    for level in rvq.levels():
        assert type(level) is VectorQuantizer
        assert (level.codebook_size, level.embed_dim) == (1024, 8)
        assert level.l2_norm is False
    assert (rvq.codebook_size, rvq.embed_dim, rvq.in_channels) == (1024, 8, 8)
    assert rvq.rotation_trick is False


def test_a_level_asking_for_the_rotation_trick_is_refused_by_name():
    with pytest.raises(InputError) as err:
        ResidualVQ(depth=2, quantizer=dict(LEVEL, rotation_trick=True))
    assert str(err.value) == (
        'ResidualVQ: the level config sets rotation_trick=True, but a '
        "level's output carries no gradient in ResidualVQ; set "
        'ResidualVQ(rotation_trick=True) instead')


def test_forward_metrics_are_each_levels_usage_and_their_mean():
    torch.manual_seed(0)
    rvq = ResidualVQ(depth=3, quantizer=LEVEL).eval()
    out = rvq(torch.randn(2, 4, 3, 3))
    usages = [out.indices[:, g].unique().numel() / 16 for g in range(3)]
    for g, usage in enumerate(usages):
        assert out.metrics[f'usage_{g}'].item() == pytest.approx(usage)
    assert out.metrics['usage'].item() == pytest.approx(sum(usages) / 3)


def test_rotation_trick_changes_the_gradient_to_z():
    # straight-through: dL/dz = dL/dq; the rotation trick rotates it
    torch.manual_seed(0)
    plain = ResidualVQ(depth=2, quantizer=LEVEL).train()
    rotated = ResidualVQ(depth=2, quantizer=LEVEL, rotation_trick=True)
    rotated.load_state_dict(plain.state_dict())
    z = torch.randn(2, 4, 3, 3)
    weight = torch.randn(2, 4, 3, 3)
    grads = []
    for rvq in (plain, rotated.train()):
        zz = z.clone().requires_grad_()
        (rvq(zz).quantized * weight).sum().backward()
        grads.append(zz.grad)
    torch.testing.assert_close(grads[0], weight)
    assert not torch.allclose(grads[1], weight, atol=1e-3)
