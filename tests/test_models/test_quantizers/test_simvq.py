"""SimVQ against the released module (values recorded in
released_quantizers.pt by tools/dev/compare_released.py) and against
direct computations."""
import pytest
import torch
from released_fixture import (
    assert_matches_released,
    outputs,
    released_case,
)

from fqzoo.models.quantizers import FactorizedQuantizer, ResidualVQ, SimVQ


def fqzoo_simvq(module, z):
    out = module(z)
    return out.quantized, out.indices.reshape(-1), {
        'loss': out.losses['loss_commit'] + out.losses['loss_codebook']}


def simvq_with(weights, **kwargs):
    k, d = weights['embedding.weight'].shape
    simvq = SimVQ(k, d, **kwargs).double()
    simvq.load_state_dict(weights, strict=False)
    return simvq.train()


@pytest.mark.parametrize('legacy', [False, True])
def test_matches_released_simvq(legacy):
    """youngsheen/SimVQ ``SimVQ(legacy=...)``: indices, quantized, its one
    loss and every gradient (z, W, b) agree to float64 rounding."""
    case = released_case(f'simvq_legacy_{legacy}')
    simvq = simvq_with(case['weights'], beta_on_codebook=legacy)
    ours = outputs(simvq, fqzoo_simvq, case['z'], case['upstream'])
    assert_matches_released(case['released'], ours)
    # the frozen matrix gets no gradient
    assert 'grad/loss/embedding.weight' not in ours


def test_matches_vqtorch_simvq_with_rotation_trick():
    """vector-quantize-pytorch ``SimVQ(rotation_trick=True)`` (no bias)."""
    case = released_case('vqtorch_simvq_rotation')
    weights = {'embedding.weight': case['weights']['frozen_codebook'],
               'embedding_proj.weight':
                   case['weights']['code_transform.weight']}
    simvq = simvq_with(weights, bias=False, rotation_trick=True)
    assert_matches_released(
        case['released'],
        outputs(simvq, fqzoo_simvq, case['z'], case['upstream']))


def test_legacy_weighting_moves_beta_to_the_codebook_term():
    torch.manual_seed(0)
    z = torch.randn(2, 4, 3, 3)
    plain, legacy = SimVQ(16, 4), SimVQ(16, 4, beta_on_codebook=True)
    legacy.load_state_dict(plain.state_dict())
    a, b = plain.train()(z).losses, legacy.train()(z).losses
    mse = a['loss_codebook']
    torch.testing.assert_close(a['loss_commit'], 0.25 * mse)
    torch.testing.assert_close(b['loss_commit'], mse)
    torch.testing.assert_close(b['loss_codebook'], 0.25 * mse)


@pytest.mark.parametrize('codebook_size', [40, 5000])
def test_lookup_is_nearest_projected_code(codebook_size):
    """Indices are the Euclidean argmin over ``W C + b`` (5000 codes runs
    the blocked search), and the output is that projected code."""
    torch.manual_seed(0)
    simvq = SimVQ(codebook_size, 3).eval()
    z = torch.randn(2, 3, 4, 5)
    out = simvq(z)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 3)
    with torch.no_grad():
        codes = simvq.embedding.weight @ simvq.embedding_proj.weight.t() \
            + simvq.embedding_proj.bias
    expected = torch.cdist(flat, codes).argmin(1)
    assert torch.equal(out.indices.flatten(), expected)
    torch.testing.assert_close(
        out.quantized.permute(0, 2, 3, 1).reshape(-1, 3), codes[expected])


def test_only_the_linear_layer_learns_unless_unfrozen():
    torch.manual_seed(0)
    z = torch.randn(2, 4, 3, 3)
    frozen = SimVQ(16, 4).train()
    sum(frozen(z).losses.values()).backward()
    assert frozen.embedding.weight.grad is None
    assert frozen.embedding_proj.weight.grad.abs().sum() > 0
    assert [n for n, p in frozen.named_parameters() if p.requires_grad] == \
        ['embedding_proj.weight', 'embedding_proj.bias']
    learned = SimVQ(16, 4, freeze_codebook=False).train()
    sum(learned(z).losses.values()).backward()
    assert learned.embedding.weight.grad.abs().sum() > 0


def test_released_key_layout_loads():
    """A released checkpoint's ``quantize.*`` entries load as they are."""
    keys = set(SimVQ(16, 4).state_dict())
    assert {'embedding.weight', 'embedding_proj.weight',
            'embedding_proj.bias'} <= keys


def test_fq2_of_simvq_sub_quantizers():
    torch.manual_seed(0)
    fq = FactorizedQuantizer(2, dict(type='SimVQ', codebook_size=32,
                                     embed_dim=4, rotation_trick=True))
    z = torch.randn(2, 8, 3, 3, requires_grad=True)
    out = fq.train()(z)
    assert out.indices.shape == (2, 2, 3, 3)
    assert set(out.losses) == {'loss_commit', 'loss_codebook'}
    for i, sub in enumerate(fq.subs):
        torch.testing.assert_close(out.branches[i],
                                   sub.eval()(z[:, 4 * i:4 * i + 4]).quantized)
    fq.eval()
    with torch.no_grad():
        torch.testing.assert_close(fq.embed_indices(out.indices),
                                   fq(z).quantized)


def test_residual_levels_of_simvq_shrink_the_error():
    torch.manual_seed(0)
    rvq = ResidualVQ(3, dict(type='SimVQ', codebook_size=256, embed_dim=4))
    z = torch.randn(4, 4, 8, 8)
    indices = rvq.eval()(z).indices
    total, errors = 0, []
    for level, idx in zip(rvq.levels(), indices.split(1, dim=1)):
        total = total + level.embed_indices(idx)
        errors.append((total - z).pow(2).mean().item())
    assert errors == sorted(errors, reverse=True)
    torch.testing.assert_close(rvq.embed_indices(indices), total)
