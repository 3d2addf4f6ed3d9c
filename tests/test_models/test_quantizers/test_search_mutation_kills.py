"""Blocked search and entropy loss behaviour that mutation testing showed
no test pinned down (docs/testing.md lists the mutants these tests kill).

References are worked out another way: the nearest code of points on an
integer grid (``torch.cdist`` in float64, ties by hand), the distance
count of the blocked search from the module docstring, the logit floor of
``_log_probs`` from its stated aim (every probability a normal float), the
entropy of two one-hot assignments by hand, and the default chunk size
from ``entropy_loss``'s docstring (``max(1, 2^22 // K)``).
"""
import math

import pytest
import torch
import torch.nn.functional as F

from fqzoo.models.quantizers import search
from fqzoo.models.quantizers.search import entropy_loss, nearest_code

DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason='needs a GPU'))]


def entropy_by_hand(z, codebook, temperature, weight):
    """Mean per-token entropy minus ``weight`` times the entropy of the
    mean assignment (``-sum a log(a + 1e-5)``), all tokens at once."""
    logits = (2 * z @ codebook.t() - codebook.pow(2).sum(1)) / temperature
    probs = F.softmax(logits.double(), dim=-1)
    sample = -(probs * probs.log()).sum(-1).mean()
    avg = probs.mean(0)
    return sample + weight * (avg * (avg + 1e-5).log()).sum()


def test_chunked_entropy_covers_every_token_once():
    """Five tokens in chunks of two: the chunks are 0-1, 2-3, 4."""
    torch.manual_seed(0)
    z, codebook = torch.randn(5, 3).double(), torch.randn(6, 3).double()
    got = entropy_loss(z, codebook, 0.7, chunk_size=2)
    want = entropy_by_hand(z, codebook, 0.7, 1.0)
    assert got.item() == pytest.approx(want.item(), rel=1e-9)


# ------------------------------------------------ the blocked nearest code
def grid_codebook():
    """150 distinct codes (i % 15, i // 15), code 140 made a copy of code
    5: with one code a block the blocks of codes 5 and 140 fall in
    different groups of 64 blocks, and code 5 must win the tie."""
    i = torch.arange(150)
    codebook = torch.stack([i % 15, i // 15], 1).float()
    codebook[140] = codebook[5]
    return codebook


@pytest.mark.parametrize('device', DEVICES)
def test_blocked_search_over_more_than_64_blocks(device):
    codebook = grid_codebook().to(device)
    torch.manual_seed(0)
    z = torch.rand(300, 2) * torch.tensor([15., 10.]) - 0.5
    z[0] = torch.tensor([5., 0.])      # on the tied codes 5 and 140
    z[1] = torch.tensor([5.1, 0.2])    # nearest to them
    z = z.to(device)
    got = nearest_code(z, codebook, token_chunk=64, code_chunk=1,
                       plain_max=0)
    want = torch.cdist(z.double(), codebook.double()).argmin(1)
    assert got.tolist() == want.tolist()
    assert got[:2].tolist() == [5, 5]
    # codes of every group of 64 blocks win somewhere
    assert {c // 64 for c in got.tolist()} == {0, 1, 2}


def test_blocked_search_computes_each_distance_block_once(monkeypatch):
    """N tokens, K codes in blocks of ``code_chunk``: one distance per
    token and code to find the winning block, then one per token and code
    of its winning block; no block larger than token_chunk x code_chunk."""
    calls = []
    real = search._code_distances

    def spy(z, codebook, code_sq):
        calls.append((z.shape[0], codebook.shape[0]))
        return real(z, codebook, code_sq)

    monkeypatch.setattr(search, '_code_distances', spy)
    torch.manual_seed(0)
    n, k, token_chunk, code_chunk = 30, 12, 16, 4
    z, codebook = torch.randn(n, 3), torch.randn(k, 3)
    got = nearest_code(z, codebook, token_chunk, code_chunk, plain_max=0)
    assert got.tolist() == torch.cdist(z, codebook).argmin(1).tolist()
    assert all(rows <= token_chunk and codes <= code_chunk
               for rows, codes in calls)
    assert sum(rows * codes for rows, codes in calls) == (
        n * k + n * code_chunk)


# -------------------------------------------------- the floor of the logits
TINY = torch.finfo(torch.float32).tiny


def floored_log_probs(logits):
    """Each row's logits raised to ``max + log(K * tiny) + 1`` (a floored
    code then keeps probability >= e^(log(K tiny) + 1 - log K) = e tiny
    however the other codes lie), log-softmaxed in float64."""
    logits = logits.double()
    bound = logits.amax(1, keepdim=True) + math.log(
        logits.shape[1] * TINY) + 1
    return F.log_softmax(torch.maximum(logits, bound), dim=1)


def log_probs_of(logits):
    """``_log_probs`` of the given ``[N, K]`` logits: tokens e_0 ... e_N-1
    against codes whose coordinates are the logits (dot product)."""
    n = logits.shape[0]
    return search._log_probs(torch.eye(n), logits.t().contiguous(), 1.0,
                             True)


def test_logits_far_below_the_row_maximum_are_floored():
    """Row 0: maximum 0, code 1 half a nat above the bound (kept), code 2
    half a nat below it (raised to it), the rest at -1. Row 1: the same
    50 lower (the bound follows each row's own maximum)."""
    k = 1000
    offset = math.log(k * TINY) + 1          # about -79.4
    row = torch.full((k,), -1.)
    row[0], row[1], row[2] = 0., offset + 0.5, offset - 0.5
    logits = torch.stack([row, row - 50])
    got = log_probs_of(logits).double()
    want = floored_log_probs(logits)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)
    # the kept code is untouched, the floored one lies on the bound
    exact = F.log_softmax(logits.double(), dim=1)
    torch.testing.assert_close(got[:, 1], exact[:, 1], rtol=0, atol=1e-4)
    assert (got[:, 2] - exact[:, 2]).min() > 0.49


def test_every_probability_is_a_normal_float():
    """Worst case of the bound: K - 1 codes tie at the maximum, so the
    floored code's probability is e * tiny (below tiny it would be a
    subnormal)."""
    for k in (2, 1000):
        logits = torch.zeros(1, k)
        logits[0, -1] = -1000.
        probs = log_probs_of(logits).exp()
        assert probs.min() >= TINY
        assert probs[0, -1].item() == pytest.approx(
            math.e * TINY * k / (k - 1 + math.e * TINY), rel=1e-3)


# ------------------------------------------------------ entropy defaults
def test_default_entropy_temperature_is_0_01():
    """Codes e0, e1 and a token on each: affinities 1 and -1 over 0.01
    make each assignment one-hot (entropy ~ 200 e^-200), the mean is
    (1/2, 1/2): loss -sum 1/2 log(1/2 + 1e-5) less, i.e. -log 2 + 2e-5
    (T = 1.01 would give -0.32)."""
    z = torch.eye(2)
    loss = entropy_loss(z, torch.eye(2), chunk_size=1).item()
    assert loss == pytest.approx(math.log(0.5 + 1e-5), abs=1e-6)


@pytest.mark.parametrize('k,chunks', [
    (4, [12]),                   # 2^22 // K = 2^20 tokens a chunk
    (2 ** 21 + 1, [1, 1]),       # 2^22 // K = 1
])
def test_default_chunk_is_2_to_the_22_probabilities(monkeypatch, k, chunks):
    """``chunk_size`` defaults to ``max(1, 2^22 // K)`` tokens: each
    checkpointed chunk of the loss gets that many (the last one fewer)."""
    rows = []
    real = search._chunk_terms

    def spy(z, *args):
        rows.append(z.shape[0])
        return real(z, *args)

    monkeypatch.setattr(search, '_chunk_terms', spy)
    z = torch.zeros(sum(chunks), 1)
    loss = entropy_loss(z, torch.zeros(k, 1))
    assert rows == chunks
    # uniform assignments: sample entropy log K, the codebook's
    # -log(1/K + 1e-5)
    assert loss.item() == pytest.approx(
        math.log(k) + math.log(1 / k + 1e-5), rel=1e-4, abs=1e-6)
