"""Head arguments that mutation testing showed no test pinned down
(docs/testing.md lists the mutants these tests kill): the final norm's
epsilon, FactorizedARHead's rotary base, key/value heads, dropouts and
stochastic depth, against hand computations and train/eval behaviour."""
import math

import pytest
import torch
import torch.nn.functional as F

from fqzoo.models.generators import (
    FactorizedARHead,
    ParallelLinearHead,
    ParallelMLPHead,
)
from fqzoo.models.generators.heads.base import MultiTokenHead
from fqzoo.models.generators.layers import init_linear_embedding

f64 = torch.float64
EPS = 0.5   # large enough to move every logit


def rms(x, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps)


def small_states(*shape):
    # |h| ~ 0.3: mean(h^2) ~ 0.1, so eps 0.5 and 1e-5 give other logits
    torch.manual_seed(1)
    return 0.3 * torch.randn(*shape, dtype=f64)


def randomise(module):
    torch.manual_seed(0)
    init_linear_embedding(module, std=0.3)
    return module.double()


# -------------------------------------------------- final norm's epsilon
def test_linear_head_norm_uses_its_eps():
    head = randomise(ParallelLinearHead(width=8, vocab_sizes=[5, 7],
                                        norm_eps=EPS))
    h = small_states(2, 3, 8)
    for out, lg in zip(head.outputs, head(h, None, None)):
        torch.testing.assert_close(lg.double(), rms(h, EPS) @ out.weight.T,
                                   atol=1e-6, rtol=1e-6)


def test_mlp_head_norm_uses_its_eps():
    head = randomise(ParallelMLPHead(width=8, vocab_sizes=[5, 7],
                                     hidden_dim=12, norm_eps=EPS))
    for mlp in head.mlps:   # residual MLPs that add nothing
        for block in mlp:
            torch.nn.init.zeros_(block[3].weight)
            torch.nn.init.zeros_(block[3].bias)
    h = small_states(2, 3, 8)
    for out, lg in zip(head.outputs, head(h, None, None)):
        torch.testing.assert_close(lg.double(), rms(h, EPS) @ out.weight.T,
                                   atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize('num_kv_heads', [None, 1])
def test_ar_head_one_sub_token_by_hand(num_kv_heads):
    # G = 1, one block: each position's sequence is the state alone, so
    # attention is wo(v) (softmax over one key), v's heads repeated for
    # grouped queries; every RMSNorm (the blocks' and the final one) uses
    # norm_eps.
    width, heads = 8, 2
    head = randomise(FactorizedARHead(
        width, [5], num_layers=1, num_heads=heads, grid_size=(2, 2),
        num_kv_heads=num_kv_heads, ffn_hidden_dim=12, norm_eps=EPS)).eval()
    block = head.stack.blocks[0]
    kv_heads = num_kv_heads or heads
    head_dim = width // heads
    x = small_states(3, 4, width)

    wqkv = block.attention.wqkv.weight
    assert wqkv.shape == (width + 2 * kv_heads * head_dim, width)
    wv = wqkv[width + kv_heads * head_dim:]
    n = rms(x, EPS) * block.attention_norm.weight
    v = (n @ wv.T).unflatten(-1, (kv_heads, head_dim))
    v = v.repeat_interleave(heads // kv_heads, dim=-2).flatten(-2)
    h1 = x + v @ block.attention.wo.weight.T
    ffn = block.feed_forward
    n2 = rms(h1, EPS) * block.ffn_norm.weight
    h2 = h1 + (F.silu(n2 @ ffn.w1.weight.T) * (n2 @ ffn.w3.weight.T)) \
        @ ffn.w2.weight.T
    expected = (rms(h2, EPS) * head.norm.weight) @ head.outputs[0].weight.T
    logits = head(x, torch.zeros(3, 4, 1, dtype=torch.long), None)[0]
    torch.testing.assert_close(logits.double(), expected, atol=1e-6,
                               rtol=1e-6)


# ------------------------------------------------------------ rotary base
def test_ar_head_rotary_table_uses_rope_base():
    # head_dim 8: pairs 0-1 rotate with the row, 2-3 with the column at
    # frequencies base^0 = 1 and base^-1/2 (0.1 for base 100). Slot 2 is
    # grid cell (0, 1): angles 0, 0, 1, 0.1.
    head = FactorizedARHead(16, [4, 4, 4], num_layers=1, num_heads=2,
                            grid_size=(2, 3), rope_base=100.0)
    angles = torch.tensor([0.0, 0.0, 1.0, 0.1])
    expected = torch.stack([angles.cos(), angles.sin()], -1)
    torch.testing.assert_close(head.stack.rope[2], expected)
    assert math.isclose(head.stack.rope[1, 3, 0].item(), 1.0)
    assert head.stack.rope[0].abs().sum() == 0


# ----------------------------------------------- dropouts, drop path
def ar_logits_train_and_eval(**kwargs):
    head = randomise(FactorizedARHead(16, [5, 7], num_layers=2,
                                      num_heads=2, grid_size=(2, 2),
                                      ffn_hidden_dim=24, **kwargs))
    torch.manual_seed(2)
    h = torch.randn(6, 3, 16, dtype=f64)
    tokens = torch.randint(5, (6, 3, 2))

    def embed(g, idx):
        return torch.cos(idx[..., None].double() + torch.arange(16.))

    runs = []
    for train in (True, False):
        head.train(train)
        runs.append(torch.cat(head(h, tokens, embed), -1))
    return runs


NO_DROPOUT = dict(attn_dropout=0.0, resid_dropout=0.0, ffn_dropout=0.0,
                  drop_path_rate=0.0)


def test_ar_head_without_dropouts_trains_as_it_evaluates():
    train, evaluate = ar_logits_train_and_eval(**NO_DROPOUT)
    torch.testing.assert_close(train, evaluate)
    # the defaults' attention dropout and drop path are 0 (the docstring's
    # LlamaGenBackbone values): with the other two at 0, no randomness
    train, evaluate = ar_logits_train_and_eval(resid_dropout=0.0,
                                               ffn_dropout=0.0)
    torch.testing.assert_close(train, evaluate)


@pytest.mark.parametrize('name,rate', [
    ('attn_dropout', 0.5), ('resid_dropout', 0.5), ('ffn_dropout', 0.5),
    ('drop_path_rate', 0.9)])
def test_ar_head_each_dropout_reaches_the_blocks(name, rate):
    torch.manual_seed(3)
    train, evaluate = ar_logits_train_and_eval(**{**NO_DROPOUT, name: rate})
    assert not torch.allclose(train, evaluate)


# ------------------------------------------------------- the base class
@pytest.mark.parametrize('make', [
    lambda **kw: ParallelLinearHead(**kw),
    lambda **kw: ParallelMLPHead(**kw),
    lambda **kw: FactorizedARHead(num_layers=1, num_heads=2,
                                  grid_size=(2, 2), **kw)])
def test_heads_keep_width_and_python_int_vocab_sizes(make):
    head = make(width=8, vocab_sizes=torch.tensor([5, 7]))
    assert head.width == 8
    assert head.vocab_sizes == [5, 7]
    assert all(type(v) is int for v in head.vocab_sizes)
    assert head.num_tokens == 2
    assert [out.weight.shape for out in head.outputs] == [(5, 8), (7, 8)]
    assert all(out.bias is None for out in head.outputs)
    assert head.norm.eps == 1e-5


def test_base_norm_defaults_to_eps_1e_5():
    # |h| ~ 3e-3: mean(h^2) ~ 1e-5, the size of the documented epsilon
    head = MultiTokenHead(8, [5]).double()
    h = 0.01 * small_states(4, 8)
    torch.testing.assert_close(head.norm(h), rms(h, 1e-5))
