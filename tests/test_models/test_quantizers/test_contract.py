"""One contract test over every registered quantizer (timm style): a new
quantizer is tested the day it is registered."""
import pytest
import torch

from fqzoo.models.quantizers import check_quantizer_output
from fqzoo.registry import QUANTIZERS, known_names

# Small settings per name; a name without an entry is built from its
# defaults, so a new quantizer needs defaults that build or a row here.
SMALL = {
    'VectorQuantizer': dict(codebook_size=64, embed_dim=4),
    'FactorizedQuantizer': dict(num_codebooks=3, quantizer=dict(
        type='VectorQuantizer', codebook_size=32, embed_dim=4)),
    'LookupFreeQuantizer': dict(embed_dim=6, entropy_groups=2),
    'BSQ': dict(embed_dim=6),
    'FSQ': dict(levels=(5, 4, 3)),
    'ResidualVQ': dict(depth=3, quantizer=dict(
        type='VectorQuantizer', codebook_size=32, embed_dim=4,
        l2_norm=False)),
}


def fqzoo_quantizers() -> list:
    """Every name fqzoo registers (test-local plugins excluded)."""
    QUANTIZERS.import_from_location()
    return sorted(name for name, cls in QUANTIZERS.module_dict.items()
                  if cls.__module__.startswith('fqzoo.'))


NAMES = fqzoo_quantizers()


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return QUANTIZERS.build(dict(type=name, **SMALL.get(name, {})))


def latent(quantizer) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(2, quantizer.in_channels, 3, 5)


def test_every_quantizer_is_covered():
    assert set(NAMES) <= set(known_names(QUANTIZERS))
    assert {'VectorQuantizer', 'FactorizedQuantizer', 'LookupFreeQuantizer',
            'FSQ', 'ResidualVQ', 'BSQ'} <= set(NAMES)


@pytest.mark.parametrize('name', NAMES)
def test_train_forward_contract(name):
    quantizer = build(name).train()
    z = latent(quantizer).requires_grad_()
    out = quantizer(z)
    check_quantizer_output(quantizer, z, out)
    assert out.quantized.shape == z.shape
    assert len(out.branches) == quantizer.num_branches
    assert quantizer.in_channels % quantizer.num_branches == 0
    assert 0 <= out.indices.min() and out.indices.max() < quantizer.codebook_size
    for key, value in out.losses.items():
        assert key.startswith('loss_') and value.dim() == 0
        assert torch.isfinite(value)
    assert all('loss' not in key for key in out.metrics)
    out.quantized.sum().backward()
    # straight-through: d(sum q)/dz is nonzero and finite
    assert z.grad is not None and torch.isfinite(z.grad).all()
    assert z.grad.abs().sum() > 0


@pytest.mark.parametrize('name', NAMES)
def test_losses_backpropagate(name):
    quantizer = build(name).train()
    z = latent(quantizer).requires_grad_()
    losses = quantizer(z).losses
    if not losses:
        pytest.skip(f'{name} has no auxiliary loss')
    sum(losses.values()).backward()
    assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize('name', NAMES)
def test_embed_indices_inverts_lookup(name):
    quantizer = build(name).eval()
    z = latent(quantizer)
    with torch.no_grad():
        out = quantizer(z)
        assert not out.losses
        torch.testing.assert_close(quantizer.embed_indices(out.indices),
                                   out.quantized)


@pytest.mark.parametrize('name', NAMES)
def test_state_dict_round_trip(name, tmp_path):
    quantizer = build(name).train()
    z = latent(quantizer)
    for _ in range(2):  # move codebooks / usage buffers off their init
        quantizer(z)
    path = tmp_path / 'quantizer.pth'
    torch.save(quantizer.state_dict(), path)
    torch.manual_seed(123)
    fresh = QUANTIZERS.build(dict(type=name, **SMALL.get(name, {})))
    fresh.load_state_dict(torch.load(path, weights_only=True))
    quantizer.eval()
    fresh.eval()
    with torch.no_grad():
        a, b = quantizer(z), fresh(z)
    assert torch.equal(a.indices, b.indices)
    torch.testing.assert_close(a.quantized, b.quantized)
    stats_a, stats_b = quantizer.codebook_stats(), fresh.codebook_stats()
    assert len(stats_a) == len(stats_b)
    for sa, sb in zip(stats_a, stats_b):
        assert sa.keys() == sb.keys()
        for key in sa:
            torch.testing.assert_close(sa[key], sb[key])


@pytest.mark.parametrize('name', NAMES)
def test_codebook_stats_and_restart(name):
    quantizer = build(name).train()
    quantizer(latent(quantizer))
    for stats in quantizer.codebook_stats():
        assert {'usage', 'perplexity', 'dead_codes'} <= stats.keys()
        assert 0 < stats['usage'] <= 1
    assert isinstance(quantizer.restart_dead_codes(), int)
