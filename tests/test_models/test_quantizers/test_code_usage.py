"""CodeUsage's sliding window against a direct computation over the list of
every step's code histogram, for windows spanning several buckets."""
import math

import pytest
import torch

from fqzoo.models.quantizers import CodeUsage


def _covered_steps(done, window, buckets):
    """Steps the statistics cover after ``done`` updates: the current bucket's
    steps plus ``buckets - 1`` full buckets of ``ceil(window / buckets)``."""
    buckets = min(buckets, window)
    per_bucket = math.ceil(window / buckets)
    return min(done, (buckets - 1) * per_bucket + (done - 1) % per_bucket + 1)


def _expected_stats(history, window, buckets, dead_after):
    covered = torch.stack(history[-_covered_steps(len(history), window,
                                                  buckets):]).sum(0).double()
    probs = covered / covered.sum().clamp(min=1)
    entropy = -torch.special.xlogy(probs, probs).sum()
    dead = 0
    for code in range(covered.numel()):
        hits = [t for t, counts in enumerate(history, 1) if counts[code] > 0]
        idle = len(history) - (hits[-1] if hits else 0)
        dead += idle >= dead_after
    return (covered > 0).double().mean().item(), entropy.exp().item(), dead


@pytest.mark.parametrize('window,buckets,dead_after', [
    (6, 3, 4), (8, 4, 6), (7, 3, 5), (5, 1, 2), (3, 10, 3)])
def test_windowed_stats_match_direct_computation(window, buckets, dead_after):
    rng = torch.Generator().manual_seed(window * 10 + buckets)
    usage = CodeUsage(6, window, buckets, dead_after=dead_after)
    history = []
    for _ in range(17):
        counts = torch.randint(0, 4, (6,), generator=rng)
        counts *= torch.rand(6, generator=rng) < 0.4  # mostly unused codes
        usage.update(counts)
        history.append(counts)
        used, perplexity, dead = _expected_stats(history, window, buckets,
                                                 dead_after)
        stats = usage.stats()
        assert stats['usage'].item() == pytest.approx(used)
        assert stats['perplexity'].item() == pytest.approx(perplexity,
                                                           rel=1e-5)
        assert int(stats['dead_codes']) == dead


def test_window_of_two_buckets_by_hand():
    """window 4 in 2 buckets of 2 steps: after steps 1-3 the window holds
    steps 1-3; step 4 completes bucket 2; step 5 clears bucket 1, so the
    window holds steps 3-5 only."""
    usage = CodeUsage(3, window=4, buckets=2)
    steps = [[1, 0, 0], [0, 1, 0], [0, 0, 2], [0, 0, 1], [0, 3, 0]]
    want_usage = [1 / 3, 2 / 3, 1.0, 1.0, 2 / 3]
    for counts, used in zip(steps, want_usage):
        usage.update(torch.tensor(counts))
        assert usage.stats()['usage'].item() == pytest.approx(used)
    # steps 3-5: code 1 three times, code 2 three times
    assert usage.stats()['perplexity'].item() == pytest.approx(2.0)
