"""FactorizedARHead: sub-token g reads the sub-tokens before it and nothing
else of its position; sampling with and without the KV cache agrees with the
teacher-forced logits."""
import pytest
import torch

from fqzoo.models.generators import FactorizedARHead, FactorizedTokenEmbedding
from fqzoo.models.generators.layers import init_linear_embedding, rope_table_2d

f64 = torch.float64
SIZES = [5, 7, 3]


def make_head(num_kv_heads=None):
    torch.manual_seed(0)
    head = FactorizedARHead(width=16, vocab_sizes=SIZES, num_layers=2,
                            num_heads=2, grid_size=(2, 3),
                            num_kv_heads=num_kv_heads, ffn_hidden_dim=32)
    init_linear_embedding(head, std=0.3)
    emb = FactorizedTokenEmbedding(16, SIZES)
    return head.double().eval(), emb.double()


def random_tokens(batch, length):
    return torch.stack([torch.randint(v, (batch, length)) for v in SIZES], -1)


def test_slots_use_the_class_row_then_the_first_grid_row():
    head, _ = make_head()
    table = rope_table_2d((2, 3), 8).double()
    torch.testing.assert_close(head.stack.rope, table[:3])


def test_sub_token_g_reads_only_earlier_sub_tokens_of_its_position():
    head, emb = make_head()
    h = torch.randn(2, 4, 16, dtype=f64)
    tokens = random_tokens(2, 4)
    base = head(h, tokens, emb.embed)
    t = 2
    for j, size in enumerate(SIZES):
        changed = tokens.clone()
        changed[:, t, j] = (changed[:, t, j] + 1) % size
        logits = head(h, changed, emb.embed)
        for g in range(3):
            others = [p for p in range(4) if p != t]
            assert torch.equal(logits[g][:, others], base[g][:, others])
            same = torch.equal(logits[g][:, t], base[g][:, t])
            assert same == (j >= g), (g, j)


def test_sub_token_zero_ignores_the_positions_tokens():
    head, emb = make_head()
    h = torch.randn(2, 4, 16, dtype=f64)
    a = head(h, random_tokens(2, 4), emb.embed)[0]
    b = head(h, random_tokens(2, 4), emb.embed)[0]
    assert torch.equal(a, b)
    assert not torch.allclose(a, head(2 * h, random_tokens(2, 4),
                                      emb.embed)[0])


@pytest.mark.parametrize('num_kv_heads', [None, 1])
def test_sample_with_and_without_cache_matches_teacher_forcing(num_kv_heads):
    head, emb = make_head(num_kv_heads)
    h = torch.randn(6, 16, dtype=f64)
    runs = {}
    for use_cache in (True, False):
        rng = torch.Generator().manual_seed(3)
        seen = []

        def pick(g, logits, seen=seen, rng=rng):
            seen.append((g, logits))
            probs = torch.softmax(logits, -1)
            return torch.multinomial(probs, 1, generator=rng)[:, 0]

        runs[use_cache] = head.sample(h, pick, emb.embed, use_cache), seen
        assert head.stack.caches is None
    (cached, seen_cached), (plain, seen_plain) = runs[True], runs[False]
    assert torch.equal(cached, plain)
    assert [g for g, _ in seen_cached] == [0, 1, 2]
    forced = head(h[:, None], cached[:, None], emb.embed)
    for (g, a), (_, b) in zip(seen_cached, seen_plain):
        # heads hand out float32 logits, computed here in float64
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(a, forced[g][:, 0], atol=1e-6, rtol=1e-6)
    # the six rows did not all draw the same sub-tokens
    assert len({tuple(row.tolist()) for row in cached}) > 1
