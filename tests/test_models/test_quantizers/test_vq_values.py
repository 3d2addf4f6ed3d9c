"""VectorQuantizer checked by value: gradient routing of the commitment and
codebook losses, the straight-through estimator, the cosine lookup, the
entropy loss and the EMA codebook update, each against a hand formula or a
direct computation."""
import math

import pytest
import torch
import torch.nn.functional as F

from fqzoo.models.quantizers import VectorQuantizer
from fqzoo.models.quantizers.search import entropy_loss


def _tokens(z):
    """``[B, C, H, W]`` to ``[B*H*W, C]``, the order VQ flattens in."""
    return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])


def _vq_with_codes(codes, **kwargs):
    vq = VectorQuantizer(codes.shape[0], codes.shape[1], **kwargs).to(
        codes.dtype)
    with torch.no_grad():
        vq.embedding.weight.copy_(codes)
        if vq.ema:
            vq.ema_sum.copy_(codes)
    return vq.train()


def _entropy(probs):
    return -torch.special.xlogy(probs, probs).sum(-1)


@pytest.fixture
def unnormalised():
    """A VQ without l2 normalisation, its codes and a latent."""
    rng = torch.Generator().manual_seed(0)
    codes = torch.randn(6, 3, generator=rng, dtype=torch.float64)
    vq = _vq_with_codes(codes, l2_norm=False, beta=0.3)
    z = torch.randn(2, 3, 2, 3, generator=rng, dtype=torch.float64)
    return vq, codes, z.requires_grad_()


def test_commitment_loss_reaches_z_only_scaled_by_beta(unnormalised):
    """d/dz of beta * mean((z - sg(e))^2) = 2 beta (z - e) / (N D); nothing
    reaches the codebook."""
    vq, codes, z = unnormalised
    out = vq(z)
    flat = _tokens(z).detach()
    e = codes[torch.cdist(flat, codes).argmin(1)]
    n, d = flat.shape
    assert out.losses['loss_commit'].item() == pytest.approx(
        0.3 * ((flat - e) ** 2).mean().item(), rel=1e-12)
    grad_z, grad_codes = torch.autograd.grad(
        out.losses['loss_commit'], [z, vq.embedding.weight],
        allow_unused=True, materialize_grads=True)
    torch.testing.assert_close(_tokens(grad_z), 2 * 0.3 * (flat - e) / (n * d))
    assert torch.count_nonzero(grad_codes) == 0


def test_codebook_loss_reaches_codes_only_without_beta(unnormalised):
    """d/de_k of mean((sg(z) - e)^2) = sum over the tokens assigned to k of
    2 (e_k - z) / (N D); nothing reaches z, and beta does not scale it."""
    vq, codes, z = unnormalised
    out = vq(z)
    flat = _tokens(z).detach()
    assign = torch.cdist(flat, codes).argmin(1)
    n, d = flat.shape
    assert out.losses['loss_codebook'].item() == pytest.approx(
        ((flat - codes[assign]) ** 2).mean().item(), rel=1e-12)
    grad_z, grad_codes = torch.autograd.grad(
        out.losses['loss_codebook'], [z, vq.embedding.weight],
        allow_unused=True, materialize_grads=True)
    expected = torch.zeros_like(codes)
    for token, k in zip(flat, assign.tolist()):
        expected[k] += 2 * (codes[k] - token) / (n * d)
    torch.testing.assert_close(grad_codes, expected)
    assert torch.count_nonzero(grad_z) == 0


def test_straight_through_is_the_identity_without_l2_norm(unnormalised):
    """Forward value is the nearest code; the vector-Jacobian product of
    ``quantized`` with any upstream gradient is that gradient."""
    vq, codes, z = unnormalised
    out = vq(z)
    flat = _tokens(z).detach()
    torch.testing.assert_close(
        _tokens(out.quantized.detach()),
        codes[torch.cdist(flat, codes).argmin(1)], rtol=0, atol=0)
    upstream = torch.randn_like(z)
    (grad_z,) = torch.autograd.grad(out.quantized, z, upstream)
    torch.testing.assert_close(grad_z, upstream, rtol=0, atol=0)


def test_straight_through_with_l2_norm_is_the_normalisation_jacobian():
    """With ``l2_norm`` the identity is taken w.r.t. ``z / |z|``, so d out /
    d z is the Jacobian of the normalisation: ``(g - u <u, g>) / |z|``."""
    rng = torch.Generator().manual_seed(1)
    vq = VectorQuantizer(5, 4, l2_norm=True).double().train()
    z = (3 * torch.randn(2, 4, 2, 2, generator=rng,
                         dtype=torch.float64)).requires_grad_()
    upstream = torch.randn(2, 4, 2, 2, generator=rng, dtype=torch.float64)
    (grad_z,) = torch.autograd.grad(vq(z).quantized, z, upstream)
    flat, g = _tokens(z).detach(), _tokens(upstream)
    norm = flat.norm(dim=1, keepdim=True)
    u = flat / norm
    expected = (g - u * (u * g).sum(1, keepdim=True)) / norm
    torch.testing.assert_close(_tokens(grad_z), expected)


def test_cosine_lookup_is_the_argmax_of_cosine_similarity():
    """Codes of very different norms: the cosine argmax differs from the raw
    Euclidean argmin for many tokens, and VQ must pick the former."""
    rng = torch.Generator().manual_seed(2)
    codes = torch.randn(32, 4, generator=rng) * torch.logspace(
        -1, 1, 32).unsqueeze(1)
    vq = VectorQuantizer(32, 4, l2_norm=True).eval()
    with torch.no_grad():
        vq.embedding.weight.copy_(codes)
    z = 5 * torch.randn(4, 4, 8, 8, generator=rng)
    flat = _tokens(z)
    cosine = torch.stack([F.cosine_similarity(flat, code.expand_as(flat))
                          for code in codes], dim=1)
    expected = cosine.argmax(1)
    assert (expected != torch.cdist(flat, codes).argmin(1)).sum() > 50
    assert torch.equal(vq(z).indices.flatten(), expected)


def _direct_entropy_loss(flat, codes, temperature):
    """Mean per-sample entropy minus the entropy of the mean assignment,
    soft assignment = softmax of cosine similarity / T."""
    probs = F.softmax(F.normalize(flat, dim=-1) @ F.normalize(codes, dim=-1).t()
                      / temperature, dim=-1)
    return _entropy(probs).mean() - _entropy(probs.mean(0))


def test_entropy_loss_value_and_gradients_against_direct_formula():
    rng = torch.Generator().manual_seed(3)
    codes = torch.randn(8, 4, generator=rng, dtype=torch.float64)
    vq = _vq_with_codes(codes, l2_norm=True, entropy_weight=0.7,
                        entropy_temperature=0.2)
    z = torch.randn(3, 4, 3, 3, generator=rng,
                    dtype=torch.float64).requires_grad_()
    got = vq(z).losses['loss_entropy']
    weight = vq.embedding.weight
    want = 0.7 * _direct_entropy_loss(_tokens(z), weight, 0.2)
    # the codebook entropy is taken as -sum a log(a + 1e-5): K * 1e-5 at most
    assert got.item() == pytest.approx(want.item(), abs=8 * 1e-5)
    for g, w in zip(torch.autograd.grad(got, [z, weight]),
                    torch.autograd.grad(want, [z, weight])):
        torch.testing.assert_close(g, w, rtol=1e-3, atol=1e-6)


def _orthonormal_latent(assign, dim):
    """One token per entry of ``assign``, each exactly on code e_k."""
    flat = F.one_hot(torch.tensor(assign), dim).double()
    return flat.t().reshape(1, dim, 1, len(assign))


def test_spreading_tokens_over_codes_lowers_the_entropy_loss():
    """Codes = the standard basis, every token exactly on one code, so every
    per-sample entropy is the same: the loss differs only by the codebook
    entropy. All four tokens on code 0 (entropy 0 of the hard assignment)
    vs one on each code: the spread batch's loss is lower by
    weight * (H(a_spread) - H(a_collapsed))."""
    dim, temperature, weight = 4, 0.5, 0.3
    vq = _vq_with_codes(torch.eye(dim, dtype=torch.float64), l2_norm=True,
                        entropy_weight=weight,
                        entropy_temperature=temperature)
    row = F.softmax(torch.eye(dim, dtype=torch.float64)[0] / temperature, 0)
    collapsed = vq(_orthonormal_latent([0, 0, 0, 0], dim))
    spread = vq(_orthonormal_latent([0, 1, 2, 3], dim))
    gap = (collapsed.losses['loss_entropy']
           - spread.losses['loss_entropy']).item()
    assert gap == pytest.approx(
        weight * (math.log(dim) - _entropy(row).item()), abs=1e-4)
    assert gap > 0


def test_entropy_gradient_step_raises_codebook_entropy():
    """The codebook-entropy part of the loss (its value at codebook weight 1
    minus at 0, through the chunked surrogate gradient) must, when
    descended, raise the entropy of the mean soft assignment computed
    directly; the per-sample part, descended, must lower the mean
    per-sample entropy."""
    rng = torch.Generator().manual_seed(4)
    codes = F.normalize(torch.randn(6, 3, generator=rng,
                                    dtype=torch.float64), dim=-1)
    # tokens bunched around code 0, so most mass sits on one code
    flat = (codes[0] + 0.3 * torch.randn(40, 3, generator=rng,
                                         dtype=torch.float64))
    flat = F.normalize(flat, dim=-1).requires_grad_()

    def soft(x):
        return F.softmax(x @ codes.t() / 0.3, dim=-1)

    def loss(codebook_weight):
        return entropy_loss(flat, codes, 0.3, True,
                            codebook_weight=codebook_weight, chunk_size=7)

    def step(value):
        (grad,) = torch.autograd.grad(value, flat)
        return (flat - 0.05 * grad).detach()

    before = _entropy(soft(flat.detach()).mean(0)).item()
    after = _entropy(soft(step(loss(1.0) - loss(0.0))).mean(0)).item()
    assert after > before + 1e-3
    sample_before = _entropy(soft(flat.detach())).mean().item()
    sample_after = _entropy(soft(step(loss(0.0)))).mean().item()
    assert sample_after < sample_before - 1e-3


def test_ema_update_against_hand_computation():
    """Per step, with assignments by nearest code (direct cdist):
    ``N <- d N + (1 - d) n``, ``m <- d m + (1 - d) s`` (n, s: this batch's
    counts and sums), Laplace smoothing ``N' = (N + eps) / (sum N + K eps)
    * sum N`` and codes ``m / N'``. A large eps makes the smoothing
    visible."""
    decay, eps, k = 0.6, 0.2, 4
    rng = torch.Generator().manual_seed(5)
    codes = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.0], [0.0, -2.0]],
                         dtype=torch.float64)
    vq = _vq_with_codes(codes, l2_norm=False, ema=True, decay=decay,
                        eps=eps)
    count = torch.ones(k, dtype=torch.float64)
    total_sum = codes.clone()
    weight = codes.clone()
    for _ in range(3):
        # tokens near codes 0 and 2 only: codes 1 and 3 decay towards 0 use
        flat = torch.cat([
            torch.tensor([1.5, 0.2]) + 0.1 * torch.randn(3, 2, generator=rng),
            torch.tensor([0.1, 1.7]) + 0.1 * torch.randn(2, 2, generator=rng),
        ]).double()
        out = vq(flat.t().reshape(1, 2, 1, 5))
        assign = torch.cdist(flat, weight).argmin(1)
        assert torch.equal(out.indices.flatten(), assign)
        counts = torch.zeros(k, dtype=torch.float64)
        sums = torch.zeros(k, 2, dtype=torch.float64)
        for token, idx in zip(flat, assign.tolist()):
            counts[idx] += 1
            sums[idx] += token
        count = decay * count + (1 - decay) * counts
        total_sum = decay * total_sum + (1 - decay) * sums
        n = count.sum()
        smoothed = (count + eps) / (n + k * eps) * n
        weight = total_sum / smoothed[:, None]
        torch.testing.assert_close(vq.ema_count, count)
        torch.testing.assert_close(vq.ema_sum, total_sum)
        torch.testing.assert_close(vq.embedding.weight, weight)
    assert 'loss_codebook' not in out.losses
