"""LlamaGen building blocks and trunk (fqzoo/models/generators/layers.py,
backbone.py): behaviour that mutation testing showed no test pinned down
(docs/testing.md lists the mutants these tests kill).

References are computed another way: rotary angles written out from the
docstring's rule (pair i of the first half turns by ``row * base **
(-4i / head_dim)``, of the second half by ``col * ...``) and applied as
complex multiplication, RMSNorm, SwiGLU and causal softmax attention by
formula in float64, dropout checked by the inverted-dropout rule (kept
entries scaled by ``1 / (1 - p)``), the documented defaults, and error
messages written out in full.
"""
import math
import re
import sys

import pytest
import torch

from fqzoo.models.generators import LlamaGenBackbone
from fqzoo.models.generators.layers import (
    Attention,
    FeedForward,
    KVCache,
    RMSNorm,
    TransformerBlock,
    TransformerStack,
    _drop_path,
    apply_rope,
    init_linear_embedding,
    rope_table_2d,
)

f64 = torch.float64
CPU = torch.device('cpu')


# ------------------------------------------------------- by-hand models
def angles_by_hand(grid, head_dim, base=10000.0, num_prefix=1):
    """``[num_prefix + h*w, head_dim // 2]`` float64 angles; NaN marks the
    class-token rows (whose table rows are all zero)."""
    rows, cols = grid
    quarter = head_dim // 4
    out = torch.full((num_prefix + rows * cols, 2 * quarter), math.nan,
                     dtype=f64)
    for r in range(rows):
        for c in range(cols):
            for i in range(quarter):
                f = base ** (-4 * i / head_dim)
                out[num_prefix + r * cols + c, i] = r * f
                out[num_prefix + r * cols + c, quarter + i] = c * f
    return out


def table_by_hand(angles):
    table = torch.stack([angles.cos(), angles.sin()], -1)
    return torch.nan_to_num(table, nan=0.0)


def rotate_by_hand(x, table):
    """Channel pairs (2i, 2i+1) as complex numbers times cos + i sin."""
    z = torch.complex(x[..., 0::2].double(), x[..., 1::2].double())
    turn = torch.complex(table[..., 0].double(), table[..., 1].double())
    turned = z * turn[None, :, None]
    return torch.stack([turned.real, turned.imag], -1).flatten(-2)


def rms_by_hand(x, weight, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * weight


def ffn_by_hand(ffn, x):
    gate = x @ ffn.w1.weight.T
    return (gate * torch.sigmoid(gate) * (x @ ffn.w3.weight.T)) \
        @ ffn.w2.weight.T


def attention_by_hand(attn, x, table, kv_heads=None):
    """Causal softmax(q k^T / sqrt(d)) v over ``x``'s positions; query head
    h reads key/value head ``h * kv_heads // heads``."""
    batch, length, width = x.shape
    heads, dim = attn.num_heads, width // attn.num_heads
    kv_heads = kv_heads or heads
    w = attn.wqkv.weight
    q = (x @ w[:width].T).view(batch, length, heads, dim)
    k = (x @ w[width:width + kv_heads * dim].T).view(
        batch, length, kv_heads, dim)
    v = (x @ w[width + kv_heads * dim:].T).view(batch, length, kv_heads, dim)
    q, k = rotate_by_hand(q, table), rotate_by_hand(k, table)
    out = torch.zeros(batch, length, heads, dim, dtype=x.dtype)
    future = torch.ones(length, length, dtype=torch.bool).triu(1)
    for h in range(heads):
        g = h * kv_heads // heads
        scores = torch.einsum('bid,bjd->bij', q[:, :, h], k[:, :, g])
        scores = (scores / math.sqrt(dim)).masked_fill(future, -math.inf)
        out[:, :, h] = torch.softmax(scores, -1) @ v[:, :, g]
    return out.reshape(batch, length, width) @ attn.wo.weight.T


def block_by_hand(block, x, table, eps, kv_heads=None):
    h = x + attention_by_hand(
        block.attention, rms_by_hand(x, block.attention_norm.weight, eps),
        table, kv_heads)
    return h + ffn_by_hand(block.feed_forward,
                           rms_by_hand(h, block.ffn_norm.weight, eps))


def randomize(module, std=0.3, seed=0):
    torch.manual_seed(seed)
    for p in module.parameters():
        torch.nn.init.normal_(p, mean=0.5 if p.dim() == 1 else 0.0, std=std)
    return module


def no_dropout(**kwargs):
    return dict(dict(token_dropout=0.0, attn_dropout=0.0, resid_dropout=0.0,
                     ffn_dropout=0.0), **kwargs)


def check_inverted_dropout(train_out, eval_out, p):
    """Every entry is either dropped (0) or ``eval / (1 - p)``; some of
    each."""
    kept = train_out != 0
    assert 0 < int(kept.sum()) < kept.numel()
    torch.testing.assert_close(train_out[kept], eval_out[kept] / (1 - p))


# ------------------------------------------------------------ backbone
def test_backbone_default_rope_base_is_10000():
    # column 39 turns pair 3 by 39 / 100 (base 10001 would give 39 /
    # 100.005, 2e-5 less)
    trunk = LlamaGenBackbone(width=8, num_layers=1, num_heads=1,
                             grid_size=(2, 40))
    expected = table_by_hand(angles_by_hand((2, 40), 8, 10000.0))
    torch.testing.assert_close(trunk.stack.rope.double(), expected,
                               atol=2e-6, rtol=0)


def test_backbone_class_prefix_rows_follow_num_prefix():
    class TwoPrefix(LlamaGenBackbone):
        num_prefix = 2

    trunk = randomize(TwoPrefix(width=16, num_layers=1, num_heads=2,
                                grid_size=(2, 2), **no_dropout())).double()
    assert trunk.max_len == 6
    expected = table_by_hand(angles_by_hand((2, 2), 8, num_prefix=2))
    torch.testing.assert_close(trunk.stack.rope.double(), expected,
                               atol=1e-6, rtol=0)
    x = torch.randn(2, 6, 16, dtype=f64)
    out = trunk.eval()(x)  # all max_len positions have a rotary row
    torch.testing.assert_close(
        out, block_by_hand(trunk.layers[0], x, expected, 1e-5),
        atol=1e-6, rtol=0)  # the trunk's table is float32


def test_backbone_passes_kv_heads_and_norm_eps_to_every_block():
    trunk = LlamaGenBackbone(width=32, num_layers=2, num_heads=4,
                             grid_size=(2, 3), num_kv_heads=2,
                             ffn_hidden_dim=24, norm_eps=0.25,
                             **no_dropout())
    trunk = randomize(trunk).double().eval()
    assert trunk.layers[0].attention.wqkv.out_features == 32 + 2 * 2 * 8
    x = torch.randn(2, 7, 32, dtype=f64)
    table = table_by_hand(angles_by_hand((2, 3), 8))
    expected = x
    for block in trunk.layers:
        expected = block_by_hand(block, expected, table, 0.25, kv_heads=2)
    torch.testing.assert_close(trunk(x), expected, atol=1e-6, rtol=0)


def test_backbone_passes_drop_path_rate():
    trunk = LlamaGenBackbone(width=16, num_layers=3, num_heads=2,
                             grid_size=(2, 2), drop_path_rate=0.3)
    rates = [b.drop_path.drop_prob for b in trunk.layers[1:]]
    assert rates == pytest.approx([0.15, 0.3])
    assert isinstance(trunk.layers[0].drop_path, torch.nn.Identity)


def test_backbone_without_dropouts_trains_deterministically():
    """drop_path_rate defaults to 0 (and attn_dropout to 0)."""
    trunk = randomize(LlamaGenBackbone(
        width=16, num_layers=2, num_heads=2, grid_size=(2, 2),
        token_dropout=0.0, resid_dropout=0.0, ffn_dropout=0.0)).double()
    x = torch.randn(3, 5, 16, dtype=f64)
    expected = trunk.eval()(x)
    trunk.train()
    torch.manual_seed(0)
    torch.testing.assert_close(trunk(x), expected, atol=0, rtol=0)


@pytest.mark.parametrize('which', ['attn_dropout', 'resid_dropout',
                                   'ffn_dropout'])
def test_backbone_passes_each_dropout(which):
    trunk = randomize(LlamaGenBackbone(
        width=16, num_layers=1, num_heads=2, grid_size=(2, 2),
        **no_dropout(**{which: 0.5}))).double()
    x = torch.randn(3, 5, 16, dtype=f64)
    expected = trunk.eval()(x)
    torch.manual_seed(0)
    assert not torch.allclose(trunk.train()(x), expected)


def test_backbone_cache_covers_the_full_length_in_its_dtype():
    trunk = randomize(LlamaGenBackbone(width=16, num_layers=2, num_heads=2,
                                       grid_size=(2, 2), num_kv_heads=1,
                                       **no_dropout())).double().eval()
    x = torch.randn(3, 5, 16, dtype=f64)
    full = trunk(x)
    trunk.setup_cache(3, dtype=f64, device=CPU)
    for cache in trunk.stack.caches:
        assert cache.keys.shape == (3, 1, 5, 8)
        assert cache.values.shape == (3, 1, 5, 8)
        assert cache.keys.dtype == f64 and cache.values.dtype == f64
    steps = [trunk(x[:, :2]), trunk(x[:, 2:3], start=2),
             trunk(x[:, 3:], start=3)]
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-10,
                               rtol=0)
    trunk.clear_cache()
    assert trunk.stack.caches is None


def test_backbone_cache_on_the_given_device():
    trunk = LlamaGenBackbone(width=16, num_layers=1, num_heads=2,
                             grid_size=(2, 2))
    trunk.setup_cache(2, dtype=torch.float16, device=torch.device('meta'))
    cache = trunk.stack.caches[0]
    assert cache.keys.device.type == 'meta'
    assert cache.values.device.type == 'meta'
    assert cache.keys.dtype == torch.float16


def test_backbone_forward_defaults_to_position_0_and_drops_tokens():
    trunk = randomize(LlamaGenBackbone(width=16, num_layers=1, num_heads=2,
                                       grid_size=(2, 2), **no_dropout()))
    trunk = trunk.double().eval()
    x = torch.randn(2, 3, 16, dtype=f64)
    table = table_by_hand(angles_by_hand((2, 2), 8))
    torch.testing.assert_close(
        trunk(x), block_by_hand(trunk.layers[0], x, table[:3], 1e-5),
        atol=1e-6, rtol=0)
    torch.testing.assert_close(
        trunk(x, 2), block_by_hand(trunk.layers[0], x, table[2:5], 1e-5),
        atol=1e-6, rtol=0)
    # token dropout acts on the input: the training pass is the eval
    # pass of the input after dropout with the same random draw
    trunk = randomize(LlamaGenBackbone(
        width=16, num_layers=1, num_heads=2, grid_size=(2, 2),
        **no_dropout(token_dropout=0.5))).double()
    torch.manual_seed(0)
    out = trunk.train()(x)
    torch.manual_seed(0)
    dropped = torch.nn.functional.dropout(x, 0.5, training=True)
    assert not torch.equal(dropped, x)
    torch.testing.assert_close(out, trunk.eval()(dropped), atol=0, rtol=0)


# ------------------------------------------------------------- rotary
@pytest.mark.parametrize('head_dim', [6, 10])
def test_rope_table_message_names_the_rule(head_dim):
    msg = ('2-D rotary embedding needs head_dim divisible by 4, got '
           f'{head_dim}')
    with pytest.raises(ValueError, match=f'^{re.escape(msg)}$'):
        rope_table_2d((2, 2), head_dim)


@pytest.mark.parametrize('head_dim', [4, 12, 20])
def test_rope_table_for_head_dims_divisible_by_four(head_dim):
    table = rope_table_2d((2, 3), head_dim)
    expected = table_by_hand(angles_by_hand((2, 3), head_dim))
    torch.testing.assert_close(table.double(), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_apply_rope_in_half_precision_rotates_in_float32(dtype):
    torch.manual_seed(0)
    table = rope_table_2d((3, 3), 8, base=100.0)
    x = (torch.randn(2, 10, 3, 8) * 4).to(dtype)
    out = apply_rope(x, table)
    assert out.dtype == dtype
    expected = rotate_by_hand(x, table).to(dtype)
    assert torch.equal(out, expected)
    # a half-precision table (a model cast to bfloat16 casts its rotary
    # buffer too) still rotates in float32, then rounds once
    table = table.to(dtype)
    expected = rotate_by_hand(x, table).to(dtype)
    assert torch.equal(apply_rope(x, table), expected)


# ------------------------------------------------------------ RMSNorm
def test_rms_norm_default_eps_is_1e_5():
    torch.manual_seed(0)
    norm = RMSNorm(6).double()
    torch.nn.init.normal_(norm.weight)
    x = torch.randn(4, 6, dtype=f64) * 3e-3  # mean square ~ eps
    torch.testing.assert_close(norm(x), rms_by_hand(x, norm.weight, 1e-5),
                               atol=1e-12, rtol=0)


def test_rms_norm_starts_as_the_plain_norm_and_keeps_eps():
    norm = RMSNorm(4, eps=0.5)
    assert norm.eps == 0.5
    assert torch.equal(norm.weight.detach(), torch.ones(4))
    x = torch.tensor([[1.0, -2.0, 3.0, 0.5]])
    expected = x / math.sqrt((1 + 4 + 9 + 0.25) / 4 + 0.5)
    torch.testing.assert_close(norm(x), expected)


def test_rms_norm_of_bfloat16_is_computed_in_float32():
    torch.manual_seed(0)
    norm = RMSNorm(64)
    x = (torch.randn(8, 64) * 5).to(torch.bfloat16)
    expected = rms_by_hand(x.double(), 1.0, 1e-5).to(torch.bfloat16)
    out = norm(x)
    torch.testing.assert_close(out, expected.float(), atol=0, rtol=0)


# ------------------------------------------------------- feed-forward
def test_feed_forward_default_has_no_dropout():
    ffn = randomize(FeedForward(8, 12)).double()
    x = torch.randn(4, 3, 8, dtype=f64)
    torch.testing.assert_close(ffn.train()(x), ffn_by_hand(ffn, x),
                               atol=1e-12, rtol=0)


def test_feed_forward_dropout_is_inverted_dropout_on_the_output():
    ffn = randomize(FeedForward(8, 12, dropout=0.75)).double()
    x = torch.randn(16, 3, 8, dtype=f64)
    torch.manual_seed(0)
    check_inverted_dropout(ffn.train()(x), ffn_by_hand(ffn, x), 0.75)


def test_feed_forward_shapes():
    ffn = FeedForward(8, 12)
    shapes = [(m.in_features, m.out_features, m.bias)
              for m in (ffn.w1, ffn.w3, ffn.w2)]
    assert shapes == [(8, 12, None), (8, 12, None), (12, 8, None)]


# ------------------------------------------------------------ KV cache
def test_kv_cache_buffers_and_update():
    cache = KVCache(2, 5, 3, 4, torch.float64, CPU)
    assert cache.keys.shape == (2, 3, 5, 4) == cache.values.shape
    assert cache.keys.dtype == f64 and cache.values.dtype == f64
    keys = torch.arange(2 * 3 * 5 * 4, dtype=f64).view(2, 3, 5, 4) + 1
    values = -keys
    k, v = cache.update(0, keys[:, :, :2], values[:, :, :2])
    assert torch.equal(k, keys[:, :, :2]) and torch.equal(v, values[:, :, :2])
    k, v = cache.update(2, keys[:, :, 2:5], values[:, :, 2:5])
    assert torch.equal(k, keys) and torch.equal(v, values)


def test_kv_cache_on_meta_device():
    cache = KVCache(1, 2, 1, 4, torch.float16, torch.device('meta'))
    assert cache.keys.device.type == 'meta'
    assert cache.values.device.type == 'meta'
    assert cache.values.dtype == torch.float16


def test_kv_cache_overflow_message():
    cache = KVCache(1, 3, 2, 4, f64, CPU)
    with pytest.raises(IndexError, match=re.escape(
            'KV cache holds 3 positions, asked to write up to 4')):
        cache.update(2, torch.ones(1, 2, 2, 4, dtype=f64),
                     torch.ones(1, 2, 2, 4, dtype=f64))


# ----------------------------------------------------------- attention
def test_attention_messages():
    with pytest.raises(ValueError, match='^' + re.escape(
            'width 30 is not divisible by num_heads 4') + '$'):
        Attention(30, 4)
    with pytest.raises(ValueError, match='^' + re.escape(
            'num_heads 4 is not a multiple of num_kv_heads 3') + '$'):
        Attention(32, 4, num_kv_heads=3)


def test_attention_defaults_full_heads_and_no_dropout():
    attn = randomize(Attention(16, 2)).double()
    assert attn.num_kv_heads == 2 and attn.head_dim == 8
    assert attn.wqkv.in_features == 16 and attn.wqkv.out_features == 48
    assert attn.wo.in_features == 16 and attn.wo.out_features == 16
    assert attn.wqkv.bias is None and attn.wo.bias is None
    table = rope_table_2d((2, 2), 8).double()
    x = torch.randn(3, 5, 16, dtype=f64)
    torch.testing.assert_close(attn.train()(x, table),
                               attention_by_hand(attn, x, table),
                               atol=1e-12, rtol=0)


def test_attention_dropout_only_while_training():
    attn = randomize(Attention(16, 2, attn_dropout=0.5)).double()
    table = rope_table_2d((2, 2), 8).double()
    x = torch.randn(3, 5, 16, dtype=f64)
    expected = attention_by_hand(attn, x, table)
    torch.testing.assert_close(attn.eval()(x, table), expected,
                               atol=1e-12, rtol=0)
    torch.manual_seed(0)
    assert not torch.allclose(attn.train()(x, table), expected)


def test_attention_residual_dropout_is_inverted_dropout():
    attn = randomize(Attention(16, 2, resid_dropout=0.5)).double()
    table = rope_table_2d((2, 2), 8).double()
    x = torch.randn(4, 5, 16, dtype=f64)
    torch.manual_seed(0)
    check_inverted_dropout(attn.train()(x, table),
                           attention_by_hand(attn, x, table), 0.5)


@pytest.mark.parametrize('kv_heads', [None, 1])
@pytest.mark.parametrize('chunks', [[2, 2, 1], [1, 2, 2], [3, 2]])
def test_cached_chunks_of_two_stay_causal(kv_heads, chunks):
    """Chunks of 2 and 3 positions after a cached prefix see the cache and
    only their own earlier positions."""
    attn = randomize(Attention(16, 2, num_kv_heads=kv_heads)).double()
    table = table_by_hand(angles_by_hand((2, 2), 8))
    x = torch.randn(2, 5, 16, dtype=f64)
    cache = KVCache(2, 5, attn.num_kv_heads, 8, f64, CPU)
    outs = [attn(x[:, :chunks[0]], table[:chunks[0]], cache)]  # start 0
    start = chunks[0]
    for size in chunks[1:]:
        outs.append(attn(x[:, start:start + size],
                         table[start:start + size], cache, start))
        start += size
    torch.testing.assert_close(torch.cat(outs, 1),
                               attention_by_hand(attn, x, table, kv_heads),
                               atol=1e-12, rtol=0)


def test_cached_chunk_on_meta_device():
    """The chunk mask is built on the input's device (meta here, as a GPU
    would be)."""
    attn = Attention(16, 2).to('meta')
    table = rope_table_2d((2, 2), 8).to('meta')
    cache = KVCache(1, 5, 2, 8, torch.float32, torch.device('meta'))
    x = torch.zeros(1, 5, 16, device='meta')
    attn(x[:, :2], table[:2], cache, 0)
    out = attn(x[:, 2:], table[2:], cache, 2)
    assert out.device.type == 'meta' and out.shape == (1, 3, 16)


# -------------------------------------------------------------- blocks
def test_drop_path_zero_is_identity_without_timm(monkeypatch):
    monkeypatch.setitem(sys.modules, 'timm.layers', None)
    for rate in (0.0, -0.5):
        module = _drop_path(rate)
        x = torch.randn(3, 4)
        assert torch.equal(module.train()(x), x)


def test_drop_path_positive_rate_is_stochastic_depth():
    module = _drop_path(0.5).train()
    assert module.drop_prob == 0.5
    x = torch.ones(256, 3)
    torch.manual_seed(0)
    out = module(x)
    kept = out[:, 0] != 0
    assert 64 < int(kept.sum()) < 192
    assert torch.equal(out[kept], torch.full_like(out[kept], 2.0))


def test_block_defaults_norm_eps_1e_5_and_no_dropout():
    """In training mode too: every dropout and drop path defaults to 0."""
    block = randomize(TransformerBlock(16, 2, 12)).double()
    table = table_by_hand(angles_by_hand((2, 2), 8))
    x = torch.randn(2, 5, 16, dtype=f64) * 3e-3
    torch.testing.assert_close(block.train()(x, table),
                               block_by_hand(block, x, table, 1e-5),
                               atol=1e-12, rtol=0)


def test_block_passes_norm_eps_and_kv_heads():
    block = randomize(TransformerBlock(16, 2, 12, num_kv_heads=1,
                                       norm_eps=0.3)).double().eval()
    table = table_by_hand(angles_by_hand((2, 2), 8))
    x = torch.randn(2, 5, 16, dtype=f64)
    torch.testing.assert_close(block(x, table),
                               block_by_hand(block, x, table, 0.3, 1),
                               atol=1e-12, rtol=0)


@pytest.mark.parametrize('which', ['attn_dropout', 'resid_dropout',
                                   'ffn_dropout', 'drop_path'])
def test_block_passes_each_dropout(which):
    block = randomize(TransformerBlock(16, 2, 12, **{which: 0.5}))
    block = block.double()
    table = table_by_hand(angles_by_hand((2, 2), 8))
    x = torch.randn(8, 5, 16, dtype=f64)
    expected = block_by_hand(block, x, table, 1e-5)
    torch.testing.assert_close(block.eval()(x, table), expected,
                               atol=1e-12, rtol=0)
    torch.manual_seed(0)
    assert not torch.allclose(block.train()(x, table), expected)


def test_block_cached_steps_equal_the_full_pass():
    block = randomize(TransformerBlock(16, 2, 12)).double().eval()
    table = table_by_hand(angles_by_hand((2, 2), 8))
    x = torch.randn(2, 5, 16, dtype=f64)
    cache = KVCache(2, 5, 2, 8, f64, CPU)
    steps = [block(x[:, :3], table[:3], cache),
             block(x[:, 3:], table[3:], cache, 3)]
    torch.testing.assert_close(torch.cat(steps, 1),
                               block_by_hand(block, x, table, 1e-5),
                               atol=1e-12, rtol=0)


# --------------------------------------------------------------- stack
def test_stack_default_ffn_width_is_llamas_rule():
    # 2/3 * 4 * 24 = 64, rounded up to a multiple of 256
    stack = TransformerStack(1, 24, 2, rope_table_2d((2, 2), 12))
    ffn = stack.blocks[0].feed_forward
    assert (ffn.w1.out_features, ffn.w3.out_features,
            ffn.w2.in_features) == (256, 256, 256)


def test_stack_default_has_no_stochastic_depth():
    table = table_by_hand(angles_by_hand((2, 2), 8))
    stack = randomize(TransformerStack(3, 16, 2, table,
                                       ffn_hidden_dim=12)).double()
    x = torch.randn(4, 5, 16, dtype=f64)
    expected = stack.eval()(x)
    torch.manual_seed(0)
    torch.testing.assert_close(stack.train()(x), expected, atol=0, rtol=0)


def test_stack_drop_path_rates_for_one_and_two_blocks():
    table = rope_table_2d((2, 2), 8)
    one = TransformerStack(1, 16, 2, table, drop_path_rate=0.4)
    assert isinstance(one.blocks[0].drop_path, torch.nn.Identity)
    two = TransformerStack(2, 16, 2, table, drop_path_rate=0.4)
    assert isinstance(two.blocks[0].drop_path, torch.nn.Identity)
    assert two.blocks[1].drop_path.drop_prob == pytest.approx(0.4)


def test_stack_passes_block_kwargs():
    table = table_by_hand(angles_by_hand((2, 2), 8))
    stack = TransformerStack(2, 16, 2, table, ffn_hidden_dim=12,
                             num_kv_heads=1, norm_eps=0.3)
    stack = randomize(stack).double().eval()
    for block in stack.blocks:  # the given SwiGLU width, not Llama's rule
        assert block.feed_forward.w1.out_features == 12
        assert block.feed_forward.w2.in_features == 12
    x = torch.randn(2, 5, 16, dtype=f64)
    expected = x
    for block in stack.blocks:
        expected = block_by_hand(block, expected, table, 0.3, 1)
    torch.testing.assert_close(stack(x), expected, atol=1e-10, rtol=0)


def test_stack_rope_is_a_non_persistent_buffer():
    table = rope_table_2d((2, 2), 8)
    stack = TransformerStack(1, 16, 2, table)
    assert not any('rope' in key for key in stack.state_dict())
    assert stack.double().rope.dtype == f64
    assert torch.equal(stack.rope.float(), table)


def test_stack_caches_one_per_block():
    stack = TransformerStack(3, 16, 2, rope_table_2d((2, 2), 8),
                             num_kv_heads=1)
    assert stack.caches is None
    stack.setup_cache(4, 5, dtype=torch.float16, device=torch.device('meta'))
    assert len(stack.caches) == 3
    assert len({id(c) for c in stack.caches}) == 3
    for cache in stack.caches:
        assert cache.keys.shape == (4, 1, 5, 8) == cache.values.shape
        assert cache.keys.dtype == torch.float16
        assert cache.values.device.type == 'meta'
    stack.clear_cache()
    assert stack.caches is None


def test_stack_reads_rotary_rows_from_start():
    table = table_by_hand(angles_by_hand((2, 3), 8))
    stack = randomize(TransformerStack(1, 16, 2, table,
                                       ffn_hidden_dim=12)).double().eval()
    x = torch.randn(2, 3, 16, dtype=f64)
    block = stack.blocks[0]
    torch.testing.assert_close(stack(x), block_by_hand(
        block, x, table[:3], 1e-5), atol=1e-12, rtol=0)
    torch.testing.assert_close(stack(x, start=4), block_by_hand(
        block, x, table[4:7], 1e-5), atol=1e-12, rtol=0)


def test_stack_takes_exactly_its_table_length():
    stack = TransformerStack(1, 16, 2, rope_table_2d((2, 2), 8)).eval()
    assert stack(torch.randn(1, 5, 16)).shape == (1, 5, 16)
    assert stack(torch.randn(1, 2, 16), start=3).shape == (1, 2, 16)
    with pytest.raises(IndexError, match='^' + re.escape(
            'positions up to 6 asked, the rotary table has 5') + '$'):
        stack(torch.randn(1, 3, 16), start=3)


def test_stack_cached_pass_uses_every_blocks_cache():
    table = table_by_hand(angles_by_hand((2, 2), 8))
    stack = randomize(TransformerStack(2, 16, 2, table,
                                       ffn_hidden_dim=12)).double().eval()
    x = torch.randn(2, 5, 16, dtype=f64)
    full = stack(x)
    stack.setup_cache(2, 5, dtype=f64, device=CPU)
    steps = [stack(x[:, :2]), stack(x[:, 2:4], start=2),
             stack(x[:, 4:], start=4)]
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-10,
                               rtol=0)


# ---------------------------------------------------------------- init
def test_init_linear_embedding_default_std_is_0_02():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(200, 200),
                                 torch.nn.Embedding(300, 100))
    init_linear_embedding(module)
    assert torch.equal(module[0].bias, torch.zeros(200))
    for weight in (module[0].weight, module[1].weight):
        assert float(weight.std()) == pytest.approx(0.02, rel=0.03)
        assert abs(float(weight.mean())) < 1e-3


def test_init_linear_embedding_leaves_other_modules_alone():
    module = torch.nn.Sequential(torch.nn.Linear(4, 4, bias=False),
                                 torch.nn.LayerNorm(4), RMSNorm(4))
    init_linear_embedding(module, std=0.5)
    assert torch.equal(module[1].weight, torch.ones(4))
    assert torch.equal(module[1].bias, torch.zeros(4))
    assert torch.equal(module[2].weight, torch.ones(4))
