"""LlamaGen building blocks checked by value against independent
computations: 2-D RoPE as complex multiplication, RMSNorm and SwiGLU by
formula, attention by hand, KV caches against the full-sequence pass."""
import math

import pytest
import torch

from fqzoo.models.generators.layers import (
    Attention,
    FeedForward,
    KVCache,
    RMSNorm,
    TransformerStack,
    apply_rope,
    find_multiple,
    init_linear_embedding,
    rope_table_2d,
    swiglu_hidden_dim,
)

f64 = torch.float64


def reference_angles(grid, head_dim, base=10000.0, num_prefix=1):
    """``[num_prefix + h*w, head_dim // 2]`` float64 rotation angles: pair
    i < head_dim/4 turns by ``row * f_i``, pair head_dim/4 + i by
    ``col * f_i``, ``f_i = base ** (-2i / (head_dim / 2))``; NaN marks the
    class-token rows (no rotation, all-zero table)."""
    rows, cols = grid
    quarter = head_dim // 4
    freqs = [base ** (-2 * i / (head_dim / 2)) for i in range(quarter)]
    angles = torch.full((num_prefix + rows * cols, 2 * quarter), math.nan,
                        dtype=f64)
    for r in range(rows):
        for c in range(cols):
            p = num_prefix + r * cols + c
            for i, f in enumerate(freqs):
                angles[p, i] = r * f
                angles[p, quarter + i] = c * f
    return angles


def table_from_angles(angles):
    table = torch.stack([angles.cos(), angles.sin()], dim=-1)
    return torch.nan_to_num(table, nan=0.0)


def rotate_by_hand(x, angles):
    """Channel pairs (2i, 2i+1) as complex numbers times ``exp(i angle)``."""
    z = torch.complex(x[..., 0::2], x[..., 1::2])
    turned = z * torch.polar(torch.ones_like(angles), angles)[None, :, None]
    turned = torch.where(torch.isnan(angles)[None, :, None],
                         torch.zeros_like(turned), turned)
    return torch.stack([turned.real, turned.imag], dim=-1).flatten(-2)


# ------------------------------------------------------------------ RoPE
def test_rope_table_matches_independent_angles_on_non_square_grid():
    grid, head_dim = (3, 5), 16
    table = rope_table_2d(grid, head_dim, base=100.0, num_prefix=2)
    angles = reference_angles(grid, head_dim, base=100.0, num_prefix=2)
    assert table.shape == (2 + 15, head_dim // 2, 2)
    assert torch.equal(table[:2], torch.zeros(2, head_dim // 2, 2))
    torch.testing.assert_close(table[2:].double(),
                               table_from_angles(angles)[2:],
                               atol=1e-6, rtol=0)


def test_rope_table_needs_head_dim_divisible_by_four():
    with pytest.raises(ValueError, match='6'):
        rope_table_2d((2, 2), 6)


def test_apply_rope_is_complex_multiplication_of_channel_pairs():
    torch.manual_seed(0)
    grid, head_dim = (2, 3), 8
    angles = reference_angles(grid, head_dim)
    x = torch.randn(2, 7, 3, head_dim, dtype=f64)
    expected = rotate_by_hand(x, angles)
    # float64 in, float64 accuracy out
    out = apply_rope(x, table_from_angles(angles))
    assert out.dtype == f64
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)
    # the library's own (float32) table and float32 inputs
    out32 = apply_rope(x.float(), rope_table_2d(grid, head_dim))
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), expected, atol=1e-5, rtol=0)
    # the class-token row zeroes the vector
    assert torch.equal(out[:, 0], torch.zeros_like(out[:, 0]))


def test_rope_dot_product_depends_only_on_the_relative_offset():
    torch.manual_seed(0)
    grid, head_dim = (4, 4), 16
    table = rope_table_2d(grid, head_dim).double()
    q, k = torch.randn(2, head_dim, dtype=f64)

    def score(q_cell, k_cell):
        pos = [1 + r * grid[1] + c for r, c in (q_cell, k_cell)]
        rq = apply_rope(q.view(1, 1, 1, -1), table[pos[0]:pos[0] + 1])
        rk = apply_rope(k.view(1, 1, 1, -1), table[pos[1]:pos[1] + 1])
        return float((rq * rk).sum())

    base = score((2, 2), (1, 1))
    for dr, dc in [(1, 0), (0, 1), (1, 1), (-1, -1), (1, -1), (-1, 1)]:
        shifted = score((2 + dr, 2 + dc), (1 + dr, 1 + dc))
        assert shifted == pytest.approx(base, abs=1e-5)
    # a different offset (in rows or in columns) changes the score
    assert abs(score((3, 2), (1, 1)) - base) > 1e-3
    assert abs(score((2, 3), (1, 1)) - base) > 1e-3


# ------------------------------------------------- norm and feed-forward
def test_rms_norm_matches_the_formula():
    torch.manual_seed(0)
    norm = RMSNorm(8, eps=1e-3).double()
    torch.nn.init.normal_(norm.weight)
    x = torch.randn(3, 5, 8, dtype=f64)
    expected = x / torch.sqrt((x ** 2).mean(-1, keepdim=True) + 1e-3) \
        * norm.weight
    out = norm(x)
    assert out.dtype == f64
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(norm.float()(x.float()).double(), expected,
                               atol=1e-5, rtol=0)


@pytest.mark.parametrize('width,hidden', [(768, 2048), (1024, 2816),
                                          (1280, 3584)])
def test_swiglu_hidden_width_rule(width, hidden):
    assert swiglu_hidden_dim(width) == hidden


def test_find_multiple():
    assert [find_multiple(n, 4) for n in (1, 4, 5, 8)] == [4, 4, 8, 8]


def test_feed_forward_is_swiglu():
    torch.manual_seed(0)
    ffn = FeedForward(8, 12).double()
    x = torch.randn(2, 3, 8, dtype=f64)
    w1, w2, w3 = ffn.w1.weight, ffn.w2.weight, ffn.w3.weight
    gate = x @ w1.T
    expected = (gate * torch.sigmoid(gate) * (x @ w3.T)) @ w2.T
    torch.testing.assert_close(ffn(x), expected, atol=1e-12, rtol=0)


# ------------------------------------------------------------- attention
def attention_by_hand(attn, x, table):
    """Causal softmax attention with k/v head ``h // (H / H_kv)`` serving
    query head h (Llama's ``repeat_kv``)."""
    batch, length, width = x.shape
    heads, kv_heads, dim = attn.num_heads, attn.num_kv_heads, attn.head_dim
    w = attn.wqkv.weight
    q = (x @ w[:width].T).view(batch, length, heads, dim)
    k = (x @ w[width:width + kv_heads * dim].T).view(batch, length,
                                                      kv_heads, dim)
    v = (x @ w[width + kv_heads * dim:].T).view(batch, length, kv_heads, dim)
    q, k = apply_rope(q, table), apply_rope(k, table)
    group = [h * kv_heads // heads for h in range(heads)]
    out = torch.zeros(batch, length, heads, dim, dtype=x.dtype)
    for h in range(heads):
        scores = torch.einsum('bid,bjd->bij', q[:, :, h],
                              k[:, :, group[h]]) / math.sqrt(dim)
        future = torch.ones(length, length, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(future, float('-inf'))
        out[:, :, h] = torch.softmax(scores, -1) @ v[:, :, group[h]]
    return out.reshape(batch, length, width) @ attn.wo.weight.T


@pytest.mark.parametrize('kv_heads', [4, 2, 1])
def test_attention_matches_causal_attention_by_hand(kv_heads):
    torch.manual_seed(0)
    table = rope_table_2d((2, 3), 8).double()
    attn = Attention(32, 4, kv_heads).double()
    x = torch.randn(2, 7, 32, dtype=f64)
    torch.testing.assert_close(attn(x, table),
                               attention_by_hand(attn, x, table),
                               atol=1e-12, rtol=0)


def test_grouped_query_attention_equals_full_attention_with_repeated_kv():
    torch.manual_seed(0)
    table = rope_table_2d((2, 3), 8).double()
    gqa = Attention(32, 4, num_kv_heads=2).double()
    full = Attention(32, 4).double()
    w = gqa.wqkv.weight.detach()
    wq, wk, wv = w[:32], w[32:48].view(2, 8, 32), w[48:].view(2, 8, 32)
    # query heads 0, 1 share k/v head 0; heads 2, 3 share k/v head 1
    with torch.no_grad():
        full.wqkv.weight.copy_(torch.cat([
            wq, wk[[0, 0, 1, 1]].reshape(32, 32),
            wv[[0, 0, 1, 1]].reshape(32, 32)]))
        full.wo.weight.copy_(gqa.wo.weight)
    x = torch.randn(3, 7, 32, dtype=f64)
    torch.testing.assert_close(gqa(x, table), full(x, table), atol=1e-12,
                               rtol=0)


def test_attention_rejects_bad_head_counts():
    with pytest.raises(ValueError, match='num_heads 3'):
        Attention(30, 3, num_kv_heads=2)
    with pytest.raises(ValueError, match='width 30'):
        Attention(30, 4)


# ------------------------------------------------------ stack and caches
def make_stack(kv_heads=None, grid=(3, 4), layers=2):
    torch.manual_seed(0)
    table = rope_table_2d(grid, 8)
    stack = TransformerStack(layers, 32, 4, table, ffn_hidden_dim=32,
                             num_kv_heads=kv_heads)
    init_linear_embedding(stack, std=0.2)
    return stack.double().eval()


def test_stack_is_causal():
    stack = make_stack()
    x = torch.randn(2, 13, 32, dtype=f64)
    out = stack(x)
    for t in (0, 5, 12):
        changed = x.clone()
        changed[:, t:] = torch.randn_like(changed[:, t:])
        other = stack(changed)
        assert torch.equal(other[:, :t], out[:, :t])
        assert not torch.allclose(other[:, t], out[:, t])


@pytest.mark.parametrize('kv_heads', [None, 2])
@pytest.mark.parametrize('chunks', [[1] * 13, [5, 4, 1, 3], [13]])
def test_kv_cache_steps_equal_the_full_pass(kv_heads, chunks):
    stack = make_stack(kv_heads)
    x = torch.randn(2, 13, 32, dtype=f64)
    full = stack(x)
    stack.setup_cache(2, 13, dtype=f64, device=torch.device('cpu'))
    outs, start = [], 0
    for size in chunks:
        outs.append(stack(x[:, start:start + size], start=start))
        start += size
    stack.clear_cache()
    torch.testing.assert_close(torch.cat(outs, 1), full, atol=1e-10, rtol=0)


def test_stack_drop_path_rises_linearly():
    stack = TransformerStack(3, 16, 2, rope_table_2d((2, 2), 8),
                             drop_path_rate=0.2)
    rates = [getattr(b.drop_path, 'drop_prob', 0.0) for b in stack.blocks]
    assert rates == pytest.approx([0.0, 0.1, 0.2])


def test_stack_and_cache_refuse_positions_past_their_length():
    stack = make_stack(grid=(2, 2))
    with pytest.raises(IndexError, match='6'):
        stack(torch.zeros(1, 6, 32, dtype=f64))
    cache = KVCache(1, 3, 2, 4, f64, torch.device('cpu'))
    with pytest.raises(IndexError, match='3 positions'):
        cache.update(2, torch.zeros(1, 2, 2, 4, dtype=f64),
                     torch.zeros(1, 2, 2, 4, dtype=f64))


def test_init_linear_embedding():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(64, 64),
                                 torch.nn.Embedding(100, 64))
    init_linear_embedding(module, std=0.5)
    assert torch.equal(module[0].bias, torch.zeros(64))
    for weight in (module[0].weight, module[1].weight):
        assert float(weight.std()) == pytest.approx(0.5, rel=0.05)
        assert abs(float(weight.mean())) < 0.02

