import pytest
import torch
import torch.nn.functional as F

from fqzoo.models.quantizers.search import (
    entropy_loss,
    nearest_code,
    nearest_code_naive,
)


# blocked; plain in chunks of 2000 // k rows; plain, one chunk
@pytest.mark.parametrize('plain_max', [0, 250_000, 1 << 24])
@pytest.mark.parametrize('n,k,token_chunk,code_chunk', [
    (1000, 700, 128, 64), (64, 5000, 1000, 512), (333, 33, 2048, 512)])
def test_nearest_code_equals_exhaustive_argmin(n, k, token_chunk, code_chunk,
                                               plain_max):
    torch.manual_seed(0)
    z, codebook = torch.randn(n, 8), torch.randn(k, 8)
    expected = torch.cdist(z.double(), codebook.double()).argmin(1)
    assert torch.equal(nearest_code(z, codebook, token_chunk, code_chunk,
                                    plain_max), expected)
    assert torch.equal(nearest_code_naive(z, codebook), expected)


def test_nearest_code_goes_blocked_only_above_plain_max(monkeypatch):
    from fqzoo.models.quantizers import search
    calls = []
    blocks = search._best_blocks
    monkeypatch.setattr(search, '_best_blocks',
                        lambda *a, **k: calls.append(1) or blocks(*a, **k))
    z, codebook = torch.randn(40, 4), torch.randn(50, 4)
    search.nearest_code(z, codebook, token_chunk=40, plain_max=2000)
    search.nearest_code(z, codebook, token_chunk=10, plain_max=500)
    assert not calls
    search.nearest_code(z, codebook, token_chunk=40, plain_max=1999)
    assert len(calls) == 1
    search.nearest_code(z, codebook, token_chunk=10, plain_max=499)
    assert len(calls) == 1 + 4            # one per chunk of 10 tokens


@pytest.mark.parametrize('plain_max', [0, 1 << 24])
def test_nearest_code_picks_first_of_tied_codes(plain_max):
    codebook = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    z = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    assert nearest_code(z, codebook, code_chunk=2,
                        plain_max=plain_max).tolist() == [0, 1]


def unchunked_entropy(z, codebook, temperature, l2_norm, codebook_weight):
    if l2_norm:
        logits = z @ codebook.t()
    else:
        logits = 2 * z @ codebook.t() - codebook.pow(2).sum(1)
    log_probs = F.log_softmax(logits / temperature, dim=-1)
    probs = log_probs.exp()
    sample = -(probs * log_probs).sum(-1).mean()
    avg = probs.mean(0)
    return sample + codebook_weight * (avg * torch.log(avg + 1e-5)).sum()


@pytest.mark.parametrize('l2_norm', [False, True])
def test_chunked_entropy_matches_unchunked(l2_norm):
    torch.manual_seed(0)
    z = torch.randn(50, 4, dtype=torch.float64, requires_grad=True)
    codebook = torch.randn(32, 4, dtype=torch.float64, requires_grad=True)
    got = entropy_loss(z, codebook, 0.5, l2_norm, codebook_weight=0.7,
                       chunk_size=7)
    want = unchunked_entropy(z, codebook, 0.5, l2_norm, 0.7)
    torch.testing.assert_close(got, want)
    for g, w in zip(torch.autograd.grad(got, [z, codebook]),
                    torch.autograd.grad(want, [z, codebook])):
        torch.testing.assert_close(g, w)


def test_entropy_at_65536_codes_is_finite():
    torch.manual_seed(0)
    z = torch.randn(256, 16, requires_grad=True)
    codebook = torch.randn(2 ** 16, 16)
    loss = entropy_loss(z, codebook, chunk_size=64)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
