"""The released sampling protocol: tokens equal to those the released
samplers (LlamaGen ``generate``, FAR ``generate_fq``) drew on the same
synthetic checkpoints (``fixtures/released_sampling.json``, recorded once by
``tools/dev/check_released_sampling.py``), and each difference from fqzoo's
protocol against a hand computation."""
import json
import math
from pathlib import Path

import pytest
import torch
from released_cases import (
    ARCHS,
    BATCH,
    CASES,
    SEEDS,
    cases_for,
    fqzoo_config,
    fqzoo_state,
    options_for,
    released_state,
)

from fqzoo.generation.released import draw_tokens
from fqzoo.models.generators.sampling import (
    draw,
    draw_released,
    filter_logits,
    filter_logits_released,
    guided_at,
    released_guidance,
)
from fqzoo.registry import GENERATORS

FIXTURE = json.loads((Path(__file__).parent / 'fixtures'
                      / 'released_sampling.json').read_text())
_MODELS = {}


def model(name):
    if name not in _MODELS:
        gen = GENERATORS.build(fqzoo_config(name))
        gen.load_state_dict(fqzoo_state(released_state(name)))
        _MODELS[name] = gen.eval()
    return _MODELS[name]


def test_fixture_covers_every_case():
    assert set(FIXTURE['streams']) == set(ARCHS)
    for name, cases in FIXTURE['streams'].items():
        assert list(cases) == cases_for(name)
        for streams in cases.values():
            assert sorted(streams) == [str(s) for s in SEEDS]


@pytest.mark.parametrize('name,case', [(n, c) for n in ARCHS
                                       for c in cases_for(n)])
def test_tokens_equal_the_released_samplers(name, case):
    gen = model(name)
    options = options_for(name, case)
    for seed in SEEDS:
        expected = FIXTURE['streams'][name][case][str(seed)]
        rng = torch.Generator().manual_seed(seed)
        for b in range(len(expected['tokens'])):
            labels, tokens = draw_tokens(gen, rng, BATCH, **options)
            assert labels.tolist() == expected['labels'][b], (seed, b)
            assert tokens.tolist() == expected['tokens'][b], (seed, b)


def test_released_tokens_without_cache_are_the_same():
    gen = model('far_dual')
    expected = FIXTURE['streams']['far_dual']['per_sub_token']['1']
    rng = torch.Generator().manual_seed(1)
    labels, tokens = draw_tokens(gen, rng, BATCH, use_cache=False,
                                 **CASES['per_sub_token'])
    assert tokens.tolist() == expected['tokens'][0]


def test_fqzoo_protocol_draws_other_tokens_where_the_order_matters():
    gen = model('far_dual')
    case = 'cfg_temperature_top_p'
    expected = FIXTURE['streams']['far_dual'][case]
    differ = 0
    for seed in SEEDS:
        rng = torch.Generator().manual_seed(seed)
        labels = torch.tensor(expected[str(seed)]['labels'][0])
        tokens = gen.generate(labels, rng=rng, **CASES[case])
        differ += tokens.tolist() != expected[str(seed)]['tokens'][0]
    assert differ == len(SEEDS)


# ----------------------------------------------- temperature, then filter
# Probabilities 0.5, 0.3, 0.15, 0.05; top-p 0.6, temperature 0.5.
# fqzoo filters first: 0.5 < 0.6, so codes 0 and 1 stay; then p^2
# renormalised: 0.25 / 0.34 = 0.7353 and 0.09 / 0.34 = 0.2647.
# Released: p^2 / 0.365 = 0.6849, 0.2466, 0.0616, 0.0068 first; 0.6849 >
# 0.6 already, so only code 0 stays.
HAND_LOGITS = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()


def test_filter_order_by_hand():
    sharp = HAND_LOGITS / 0.5
    kept_fqzoo = torch.isfinite(filter_logits(HAND_LOGITS[None], top_p=0.6))
    kept_released = torch.isfinite(filter_logits_released(sharp[None],
                                                          top_p=0.6))
    assert kept_fqzoo[0].tolist() == [True, True, False, False]
    assert kept_released[0].tolist() == [True, False, False, False]


def test_draw_frequencies_follow_each_order():
    n = 20000
    logits = HAND_LOGITS.expand(n, -1)
    rng = torch.Generator().manual_seed(0)
    released = draw_released(logits, 0.5, top_p=0.6, rng=rng)
    assert released.eq(0).all()
    ours = draw(logits, 0.5, top_p=0.6, rng=rng)
    share = ours.eq(1).double().mean().item()
    assert abs(share - 0.09 / 0.34) < 4 * math.sqrt(0.2647 * 0.7353 / n)
    assert set(ours.tolist()) == {0, 1}


def test_top_k_is_the_same_set_before_or_after_the_temperature():
    rng = torch.Generator().manual_seed(3)
    logits = torch.randn(6, 20, generator=rng)
    for k in (1, 4, 19, 20, 25):
        ours = torch.isfinite(filter_logits(logits, top_k=k))
        theirs = torch.isfinite(filter_logits_released(logits / 0.3,
                                                       top_k=k))
        assert torch.equal(ours, theirs), k


def test_released_draw_is_one_multinomial_over_the_batch():
    logits = torch.tensor([[0.0, 1.0, 2.0], [2.0, 0.5, -1.0]])
    probs = torch.softmax(logits / 0.7, dim=-1)
    expected = torch.multinomial(probs, 1, generator=torch.Generator()
                                 .manual_seed(4))[:, 0]
    picked = draw_released(logits, 0.7, rng=torch.Generator().manual_seed(4))
    assert torch.equal(picked, expected)


def test_released_temperature_zero_divides_by_1e5_and_draws():
    # logits 0 and 1e-5: divided by 1e-5 they are 0 and 1, so code 1 is
    # drawn with probability e / (1 + e) = 0.7311, not always (argmax).
    n = 20000
    logits = torch.tensor([[0.0, 1e-5]]).expand(n, -1)
    rng = torch.Generator().manual_seed(1)
    before = rng.get_state()
    share = draw_released(logits, 0.0, rng=rng).double().mean().item()
    assert abs(share - math.e / (1 + math.e)) < 4 * math.sqrt(0.2 / n)
    assert not torch.equal(rng.get_state(), before)
    assert draw(logits, 0.0).eq(1).all()


def test_released_nucleus_matches_brute_force():
    rng = torch.Generator().manual_seed(5)
    logits = torch.randn(30, 7, generator=rng, dtype=torch.float64) * 2
    probs = torch.softmax(logits, dim=-1)
    for p in (0.1, 0.5, 0.9, 0.99):
        kept = torch.isfinite(filter_logits_released(logits, top_p=p))
        for row, prob in zip(kept, probs):
            order = prob.argsort(descending=True).tolist()
            total, expected = 0.0, set()
            for code in order:   # keep codes until the total exceeds p
                expected.add(code)
                total += prob[code].item()
                if total > p:
                    break
            assert set(row.nonzero()[:, 0].tolist()) == expected


# --------------------------------------------------- the guidance gate
def test_guidance_gate_by_hand():
    assert released_guidance([2.0]) is True
    assert released_guidance([1.0]) is False
    assert released_guidance([0.5, 0.9]) is False
    assert released_guidance([1.5, 3.0]) is True
    with pytest.raises(ValueError, match=r'\[2.0, 1.0\]'):
        released_guidance([2.0, 1.0])


def test_scale_below_one_guides_only_under_fqzoo():
    gen = model('llamagen')
    labels = torch.tensor([1, 4, 7])

    def tokens(**kwargs):
        return gen.generate(labels, temperature=0, **kwargs)

    assert torch.equal(tokens(cfg_scale=0.5, protocol='released', top_k=1),
                       tokens(cfg_scale=1.0, protocol='released', top_k=1))
    assert not torch.equal(tokens(cfg_scale=0.3), tokens(cfg_scale=1.0))


def test_cfg_interval_positions_by_hand():
    assert all(guided_at(t, -1) for t in range(20))
    assert [guided_at(t, 3) for t in range(7)] == [True] * 5 + [False] * 2
    assert [guided_at(t, 0) for t in range(3)] == [True, True, False]


def test_released_protocol_refuses_what_the_release_cannot_do():
    gen = model('far_dual')
    labels = torch.tensor([0])
    with pytest.raises(ValueError, match='every sub-token'):
        gen.generate(labels, cfg_scale=[2.0, 1.0], protocol='released')
    with pytest.raises(ValueError, match="'linear' is fqzoo's"):
        gen.generate(labels, cfg_scale=2.0, cfg_schedule='linear',
                     protocol='released')
    with pytest.raises(ValueError, match="'fqzoo', 'released'"):
        gen.generate(labels, protocol='paper')
