"""Sampling behaviour that mutation testing showed no test pinned down
(docs/testing.md lists the mutants these tests kill).

References are torch.multinomial on the probabilities the docstrings name,
hand-worked nucleus sets and the documented defaults."""
import re

import pytest
import torch

from fqzoo.models.generators import sampling
from fqzoo.models.generators.sampling import (
    cfg_scale_at,
    draw,
    draw_released,
    filter_logits,
    filter_logits_released,
    released_guidance,
    rngs_for,
)


def spread_logits(rows=64, codes=6, seed=0):
    rng = torch.Generator().manual_seed(seed)
    return torch.randn(rows, codes, generator=rng) * 1.5


def reference_draw(probs, seed):
    """One torch.multinomial call over the batch, as the docstrings say."""
    rng = torch.Generator().manual_seed(seed)
    return torch.multinomial(probs, 1, generator=rng)[:, 0]


# ------------------------------------------------------------- defaults
@pytest.mark.parametrize('sampler', [draw, draw_released])
def test_default_temperature_is_one(sampler):
    logits = spread_logits()
    expected = reference_draw(torch.softmax(logits, -1), seed=5)
    picked = sampler(logits, rng=torch.Generator().manual_seed(5))
    assert torch.equal(picked, expected)


def test_released_top_k_alone_uses_the_default_top_p_of_one():
    # top_k without top_p: the default top_p (1) is valid and keeps the
    # two largest codes of each row, renormalised.
    logits = spread_logits()
    top2 = logits.topk(2, dim=-1).indices
    masked = torch.full_like(logits, float('-inf')).scatter(
        -1, top2, logits.gather(-1, top2))
    expected = reference_draw(torch.softmax(masked, -1), seed=2)
    picked = draw_released(logits, top_k=2,
                           rng=torch.Generator().manual_seed(2))
    assert torch.equal(picked, expected)
    assert (picked[:, None] == top2).any(-1).all()


# ----------------------------------------------------------- top-k of 1
def test_released_top_k_one_always_draws_the_argmax():
    logits = spread_logits()
    for seed in range(3):
        picked = draw_released(logits, top_k=1,
                               rng=torch.Generator().manual_seed(seed))
        assert torch.equal(picked, logits.argmax(-1))


@pytest.mark.parametrize('sampler', [draw, draw_released])
def test_one_generator_draws_from_a_single_allowed_code(sampler):
    # One random generator for the batch and one code left per row: one
    # torch.multinomial sample per row (more would need more codes).
    logits = spread_logits(rows=8)
    picked = sampler(logits, 0.8, top_k=1,
                     rng=torch.Generator().manual_seed(1))
    assert torch.equal(picked, logits.argmax(-1))


@pytest.mark.parametrize('sampler', [draw, draw_released])
@pytest.mark.parametrize('seed', [None, 4])
def test_a_one_code_vocabulary_always_draws_code_zero(sampler, seed):
    # one torch.multinomial sample per row of a [B, 1] distribution
    rng = None if seed is None else torch.Generator().manual_seed(seed)
    picked = sampler(torch.randn(3, 1), 0.9, rng=rng)
    assert picked.tolist() == [0, 0, 0]


# ----------------------------------------------- top-p 1 keeps everything
def rounding_rows():
    """Rows whose float32 cumulative probability (sorted, summed in order)
    rounds above 1 before the last code, a -40 logit."""
    rng = torch.Generator().manual_seed(0)
    logits = torch.randn(400, 6, generator=rng) * 3
    logits[:, -1] = -40.0
    ordered = torch.sort(logits, dim=-1, descending=True).values
    probs = torch.softmax(ordered, dim=-1)
    cumulative = torch.cumsum(probs, dim=-1)
    over = (cumulative - probs)[:, -1] > 1
    # the premise: float32 rounding pushes some partial sums above 1
    assert over.any() and (cumulative[:, -2] > 1).any()
    return logits


@pytest.mark.parametrize('fn', [filter_logits, filter_logits_released])
def test_top_p_one_keeps_every_code_despite_rounding(fn):
    logits = rounding_rows()
    assert torch.equal(fn(logits, top_p=1.0), logits)
    assert torch.equal(fn(logits), logits)


# ------------------------------------------------- released nucleus edge
def test_released_nucleus_keeps_the_code_that_reaches_p_exactly():
    # Four equal codes: cumulative 0.25, 0.5, 0.75, 1 (exact in float32).
    # 0.5 does not exceed top_p = 0.5, so the third code is kept too: the
    # smallest set whose probability exceeds 0.5 has three codes.
    logits = torch.zeros(2, 4)
    for fn in (filter_logits, filter_logits_released):
        kept = torch.isfinite(fn(logits, top_p=0.5)).sum(-1)
        assert kept.tolist() == [3, 3], fn.__name__


# ------------------------------------------------------------- messages
def test_released_draw_refuses_a_negative_temperature_with_its_value():
    with pytest.raises(ValueError,
                       match=r'^temperature must be >= 0, got -0\.5$'):
        draw_released(torch.zeros(2, 3), temperature=-0.5)


def test_mixed_released_guidance_message_in_full():
    message = ("cfg_scale [2.0, 1.0]: under the released protocol every "
               "sub-token's scale must be above 1 (guided) or none (the "
               "released FAR sampler guides the batch by cfg_scale[0] and "
               "each sub-token by its own scale, and fails on a mix)")
    with pytest.raises(ValueError, match='^' + re.escape(message) + '$'):
        released_guidance([2.0, 1.0])


# ---------------------------------------------------------- cfg schedule
def test_linear_schedule_over_two_positions_ends_at_the_scale():
    # 'linear' rises from 1 at the first position to the scale at the last.
    assert cfg_scale_at(3.0, 0, 2, 'linear') == 1.0
    assert cfg_scale_at(3.0, 1, 2, 'linear') == 3.0
    assert cfg_scale_at(5.0, 2, 3, 'linear') == 5.0
    assert cfg_scale_at(5.0, 1, 3, 'linear') == 3.0


# ------------------------------------------------------------- rngs_for
def test_rngs_for_makes_the_generators_on_the_asked_device(monkeypatch):
    # CPU-only here: record the device each generator is asked for.
    real = torch.Generator
    asked = []

    def generator(device=None):
        asked.append(device)
        return real(device='cpu')

    monkeypatch.setattr(sampling.torch, 'Generator', generator)
    rngs = rngs_for([3, 9], device='cuda:1')
    monkeypatch.undo()
    assert asked == ['cuda:1', 'cuda:1']
    assert rngs[1].initial_seed() == 9


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_rngs_for_cuda_generators_are_on_cuda():
    rngs = rngs_for([4], device='cuda')
    assert rngs[0].device.type == 'cuda'
    assert rngs[0].initial_seed() == 4
