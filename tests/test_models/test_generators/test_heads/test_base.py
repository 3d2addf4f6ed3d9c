"""The MultiTokenHead contract, over every head: one zero-initialised output
layer per sub-token (uniform first predictions), logits ``[B, L, V_g]``, and
``sample`` asking ``pick`` for sub-tokens 0, 1, ..., G-1 in order."""
import pytest
import torch

from fqzoo.models.generators import FactorizedTokenEmbedding, MultiTokenHead
from fqzoo.registry import GENERATORS

SIZES = [5, 7, 3]
HEADS = [dict(type='ParallelLinearHead'),
         dict(type='ParallelMLPHead', hidden_dim=16),
         dict(type='FactorizedARHead', num_layers=1, num_heads=2,
              grid_size=(2, 2))]


def build(cfg):
    torch.manual_seed(0)
    return GENERATORS.build(dict(cfg, width=16, vocab_sizes=SIZES)).eval()


@pytest.mark.parametrize('cfg', HEADS, ids=lambda c: c['type'])
def test_outputs_start_at_zero_so_first_predictions_are_uniform(cfg):
    head = build(cfg)
    emb = FactorizedTokenEmbedding(16, SIZES)
    tokens = torch.stack([torch.randint(v, (2, 4)) for v in SIZES], -1)
    logits = head(torch.randn(2, 4, 16), tokens, emb.embed)
    assert [tuple(lg.shape) for lg in logits] == [(2, 4, v) for v in SIZES]
    for out, lg in zip(head.outputs, logits):
        assert out.bias is None and not out.weight.any()
        assert lg.dtype == torch.float32 and not lg.any()


@pytest.mark.parametrize('cfg', HEADS, ids=lambda c: c['type'])
def test_sample_picks_sub_tokens_in_order(cfg):
    head = build(cfg)
    for out in head.outputs:
        torch.nn.init.normal_(out.weight)
    emb = FactorizedTokenEmbedding(16, SIZES)
    seen = []

    def pick(g, logits):
        seen.append((g, tuple(logits.shape)))
        return logits.argmax(-1)

    picked = head.sample(torch.randn(3, 16), pick, emb.embed)
    assert seen == [(g, (3, v)) for g, v in enumerate(SIZES)]
    assert picked.shape == (3, 3) and picked.dtype == torch.long


def test_base_forward_is_abstract():
    head = MultiTokenHead(8, [4])
    with pytest.raises(NotImplementedError):
        head(torch.zeros(1, 1, 8), None, None)
