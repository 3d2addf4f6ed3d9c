"""LlamaGenBackbone: its rotary table, causality and KV-cached decoding."""
import pytest
import torch

from fqzoo.models.generators import LlamaGenBackbone
from fqzoo.models.generators.layers import init_linear_embedding, rope_table_2d

f64 = torch.float64


def make_backbone(grid=(2, 3), **kwargs):
    torch.manual_seed(0)
    trunk = LlamaGenBackbone(width=32, num_layers=2, num_heads=4,
                             grid_size=grid, ffn_hidden_dim=32, **kwargs)
    init_linear_embedding(trunk, std=0.2)
    return trunk.double().eval()


def test_rotary_table_is_the_grids_with_one_class_row():
    trunk = make_backbone(grid=(2, 3), rope_base=100.0)
    assert trunk.max_len == 7
    assert len(trunk.layers) == 2
    torch.testing.assert_close(trunk.stack.rope,
                               rope_table_2d((2, 3), 8, 100.0).double())
    assert not trunk.stack.rope[0].any()


def test_causal_over_class_token_and_grid():
    trunk = make_backbone()
    x = torch.randn(2, 7, 32, dtype=f64)
    out = trunk(x)
    assert out.shape == (2, 7, 32)
    for t in range(1, 7):
        changed = x.clone()
        changed[:, t:] += torch.randn_like(changed[:, t:])
        other = trunk(changed)
        assert torch.equal(other[:, :t], out[:, :t])
        assert not torch.allclose(other[:, t:], out[:, t:])


@pytest.mark.parametrize('num_kv_heads', [None, 2])
def test_cached_decoding_equals_the_full_pass(num_kv_heads):
    trunk = make_backbone(num_kv_heads=num_kv_heads)
    x = torch.randn(3, 7, 32, dtype=f64)
    full = trunk(x)
    trunk.setup_cache(3, dtype=f64, device=torch.device('cpu'))
    steps = [trunk(x[:, t:t + 1], start=t) for t in range(7)]
    trunk.clear_cache()
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-10, rtol=0)
    assert trunk.stack.caches is None
    # after clear_cache a full pass works again and is unchanged
    torch.testing.assert_close(trunk(x), full, atol=0, rtol=0)


def test_token_dropout_only_in_training():
    trunk = make_backbone(token_dropout=0.5)
    x = torch.randn(2, 7, 32, dtype=f64)
    assert torch.equal(trunk(x), trunk(x))
    trunk.train()
    torch.manual_seed(1)
    assert not torch.allclose(trunk(x), trunk.eval()(x))
