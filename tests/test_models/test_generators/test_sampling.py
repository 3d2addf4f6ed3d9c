"""Guidance, filtering and drawing against brute-force references and
empirical frequencies."""
import itertools

import pytest
import torch

from fqzoo.models.generators.sampling import (
    cfg_scale_at,
    draw,
    draw_released,
    filter_logits,
    guide,
    per_token,
    rngs_for,
)

f64 = torch.float64


def kept(logits):
    return [set(torch.isfinite(row).nonzero()[:, 0].tolist())
            for row in logits]


# ----------------------------------------------------------------- top-k
def test_top_k_keeps_exactly_the_k_largest():
    torch.manual_seed(0)
    logits = torch.randn(5, 11)
    for k in (1, 3, 10):
        out = filter_logits(logits, top_k=k)
        expected = [set(row.argsort(descending=True)[:k].tolist())
                    for row in logits]
        assert kept(out) == expected
        finite = torch.isfinite(out)
        assert torch.equal(out[finite], logits[finite])
    for k in (0, 11, 50):
        assert torch.equal(filter_logits(logits, top_k=k), logits)


def test_filter_returns_a_new_tensor():
    logits = torch.randn(2, 6)
    before = logits.clone()
    filter_logits(logits, top_k=2, top_p=0.5)
    assert torch.equal(logits, before)


# ----------------------------------------------------------------- top-p
def smallest_prefix_exceeding(probs, p):
    """Brute force: the codes of the shortest run of most-likely codes whose
    probability exceeds ``p`` (all of them if none does)."""
    order = sorted(range(len(probs)), key=lambda i: -probs[i])
    for m in range(1, len(order) + 1):
        if sum(probs[i] for i in order[:m]) > p:
            return set(order[:m])
    return set(order)


def test_top_p_matches_brute_force_enumeration():
    rng = torch.Generator().manual_seed(0)
    logits = torch.randn(40, 9, generator=rng, dtype=f64) * 2
    for p in (0.05, 0.3, 0.5, 0.77, 0.9, 0.99):
        out = filter_logits(logits, top_p=p)
        probs = torch.softmax(logits, -1).tolist()
        assert kept(out) == [smallest_prefix_exceeding(row, p)
                             for row in probs], p
        assert torch.equal(out[torch.isfinite(out)],
                           logits[torch.isfinite(out)])


def test_top_p_keeps_the_code_that_crosses_p():
    logits = torch.tensor([[0.6, 0.3, 0.1]], dtype=f64).log()
    assert kept(filter_logits(logits, top_p=0.5)) == [{0}]
    assert kept(filter_logits(logits, top_p=0.7)) == [{0, 1}]
    assert kept(filter_logits(logits, top_p=0.95)) == [{0, 1, 2}]
    # at exactly p (0.25 + 0.25 == 0.5) the next code is still kept: the
    # kept mass exceeds p, as in LlamaGen's sampler
    uniform = torch.zeros(1, 4)
    assert len(kept(filter_logits(uniform, top_p=0.5))[0]) == 3
    # a dominant code alone
    assert kept(filter_logits(torch.tensor([[9.0, 0.0, 0.0]]),
                              top_p=0.5)) == [{0}]


def test_top_k_then_top_p_renormalises_over_the_top_k():
    logits = torch.tensor([[0.4, 0.3, 0.2, 0.1]]).log()
    # within the top 2, probabilities are 4/7 and 3/7: 4/7 exceeds 0.5
    assert kept(filter_logits(logits, top_k=2, top_p=0.5)) == [{0}]
    assert kept(filter_logits(logits, top_k=3, top_p=0.5)) == [{0, 1}]


@pytest.mark.parametrize('kwargs,match', [
    (dict(top_p=0.0), 'top_p'), (dict(top_p=1.5), 'top_p'),
    (dict(top_k=-1), 'top_k')])
def test_filter_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        filter_logits(torch.zeros(1, 3), **kwargs)


# ------------------------------------------------------------------ draw
def test_temperature_zero_is_argmax_after_filtering():
    torch.manual_seed(0)
    logits = torch.randn(50, 13)
    assert torch.equal(draw(logits, temperature=0), logits.argmax(-1))
    assert torch.equal(draw(logits, temperature=0, top_k=3, top_p=0.1),
                       logits.argmax(-1))


def chi_square(counts, probs):
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize('temperature', [0.5, 1.0, 2.0])
def test_draw_frequencies_match_the_tempered_softmax(temperature):
    logits = torch.tensor([1.0, 0.2, -0.5, 0.0, -1.5])
    n = 40000
    rng = torch.Generator().manual_seed(int(temperature * 10))
    picks = draw(logits.expand(n, -1), temperature, rng=rng)
    counts = torch.bincount(picks, minlength=5).double()
    probs = torch.softmax(logits.double() / temperature, -1)
    # chi-square with 4 degrees of freedom: 18.47 at p = 0.001
    assert chi_square(counts, probs) < 18.47
    # and not the untempered distribution (when the temperature matters)
    if temperature != 1.0:
        assert chi_square(counts, torch.softmax(logits.double(), -1)) > 100


def test_draw_frequencies_with_top_k_and_top_p():
    logits = torch.tensor([1.0, 0.2, -0.5, 0.0, -1.5])
    n = 40000
    rng = torch.Generator().manual_seed(0)
    # top 3 are codes 0, 1, 3 with softmax 0.5178, 0.2327, 0.1906 of the
    # whole; renormalised 0.550, 0.247, 0.203; top_p 0.7 keeps 0 and 1
    picks = draw(logits.expand(n, -1), 1.0, top_k=3, top_p=0.7,
                 rng=rng)
    counts = torch.bincount(picks, minlength=5).double()
    assert counts[[2, 3, 4]].sum() == 0
    probs = torch.softmax(logits[[0, 1]].double(), -1)
    assert chi_square(counts[[0, 1]], probs) < 10.83  # 1 dof, p = 0.001


def test_row_i_depends_only_on_generator_i():
    torch.manual_seed(0)
    logits = torch.randn(5, 60)

    def draws(rows, seeds, steps=20):
        rngs = rngs_for(seeds)
        return torch.stack([draw(logits[rows], 1.0, rng=rngs)
                            for _ in range(steps)], 1)

    a = draws([0, 1, 2], [10, 11, 12])
    b = draws([3, 1], [20, 11])
    c = draws([1], [11])
    assert torch.equal(a[1], b[1]) and torch.equal(a[1], c[0])
    # another seed for the same row draws otherwise
    assert not torch.equal(draws([1], [13])[0], c[0])


@pytest.mark.parametrize('sampler', [draw, draw_released])
@pytest.mark.parametrize('kwargs,match', [
    (dict(top_p=1.5), r'top_p must be in \(0, 1\], got 1.5'),
    (dict(top_p=0.0), r'top_p must be in \(0, 1\], got 0.0'),
    (dict(top_k=-1), 'top_k must be >= 0, got -1')])
def test_both_protocols_refuse_bad_filter_arguments(sampler, kwargs, match):
    # whichever of top_k / top_p is left at its no-op value
    with pytest.raises(ValueError, match=match):
        sampler(torch.randn(2, 4), **kwargs)


def test_draw_rejects_bad_arguments():
    with pytest.raises(ValueError, match='2 random generators for 3 samples'):
        draw(torch.zeros(3, 4), rng=rngs_for([0, 1]))
    with pytest.raises(ValueError, match='-1'):
        draw(torch.zeros(3, 4), temperature=-1)


def test_rngs_for_are_seeded():
    rngs = rngs_for([4, 7])
    for rng, seed in zip(rngs, (4, 7)):
        ref_rng = torch.Generator().manual_seed(seed)
        assert torch.equal(torch.rand(3, generator=rng),
                           torch.rand(3, generator=ref_rng))


# -------------------------------------------------------------- guidance
def test_guide_scale_one_is_cond_and_otherwise_the_cfg_formula():
    torch.manual_seed(0)
    cond, uncond = torch.randn(2, 3, 7, dtype=f64)
    assert guide(cond, uncond, 1) is cond
    assert guide(cond, uncond, 1.0) is cond
    for s in (0.0, 0.5, 1.5, 4.0):
        expected = uncond + s * (cond - uncond)
        torch.testing.assert_close(guide(cond, uncond, s), expected,
                                   atol=1e-12, rtol=0)
    assert torch.equal(guide(cond, uncond, 0.0), uncond)


def test_cfg_scale_schedules():
    assert [cfg_scale_at(3.0, t, 5) for t in range(5)] == [3.0] * 5
    linear = [cfg_scale_at(3.0, t, 5, 'linear') for t in range(5)]
    assert linear == pytest.approx([1.0, 1.5, 2.0, 2.5, 3.0])
    assert cfg_scale_at(3.0, 0, 1, 'linear') == 1.0
    with pytest.raises(ValueError, match="'cosine'"):
        cfg_scale_at(3.0, 0, 5, 'cosine')


def test_per_token():
    assert per_token(0.5, 3, 'top_p') == [0.5, 0.5, 0.5]
    assert per_token((1, 0), 2, 'top_k') == [1, 0]
    assert per_token([1, 0], 2, 'top_k') == [1, 0]
    for bad in ([1, 0, 0], [1]):
        with pytest.raises(ValueError, match=f'top_k has {len(bad)} values'):
            per_token(bad, 2, 'top_k')


def test_top_p_brute_force_covers_ties_free_permutations():
    """Every ordering of four distinct probabilities, every crossing."""
    probs = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=f64)
    for perm in itertools.permutations(range(4)):
        logits = probs[list(perm)].log()[None]
        for p in (0.35, 0.65, 0.85, 0.95):
            assert kept(filter_logits(logits, top_p=p)) == [
                smallest_prefix_exceeding(probs[list(perm)].tolist(), p)]
