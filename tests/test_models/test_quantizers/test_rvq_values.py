"""ResidualVQ against a direct residual loop: each level's nearest code of
what the previous levels left, their sum, the commitment losses summed over
levels (value and gradient) and the straight-through gradient."""
import pytest
import torch

from fqzoo.models.quantizers import ResidualVQ


def test_residual_levels_against_direct_loop():
    depth, k, dim, beta = 3, 5, 3, 0.4
    rvq = ResidualVQ(depth, dict(type='VectorQuantizer', codebook_size=k,
                                 embed_dim=dim, l2_norm=False, beta=beta))
    rvq = rvq.double().train()
    rng = torch.Generator().manual_seed(0)
    books = [torch.randn(k, dim, generator=rng, dtype=torch.float64) / (i + 1)
             for i in range(depth)]
    with torch.no_grad():
        for level, book in zip(rvq.codebooks, books):
            level.embedding.weight.copy_(book)
    z = torch.randn(2, dim, 2, 2, generator=rng,
                    dtype=torch.float64).requires_grad_()
    out = rvq(z)

    residual = z.detach().permute(0, 2, 3, 1).reshape(-1, dim)
    total, indices, commit = torch.zeros_like(residual), [], 0.0
    commit_grad = torch.zeros_like(residual)
    for book in books:
        idx = torch.cdist(residual, book).argmin(1)
        commit += beta * ((residual - book[idx]) ** 2).mean().item()
        # RQ-VAE: level l commits z - sg(e_1 + ... + e_l) to z
        commit_grad += 2 * beta * (residual - book[idx]) / residual.numel()
        total, residual = total + book[idx], residual - book[idx]
        indices.append(idx)
    assert torch.equal(out.indices.permute(0, 2, 3, 1).reshape(-1, depth),
                       torch.stack(indices, 1))
    torch.testing.assert_close(
        out.quantized.detach().permute(0, 2, 3, 1).reshape(-1, dim), total)
    assert out.losses['loss_commit'].item() == pytest.approx(commit,
                                                             rel=1e-12)
    (grad,) = torch.autograd.grad(out.losses['loss_commit'], z,
                                  retain_graph=True)
    torch.testing.assert_close(grad.permute(0, 2, 3, 1).reshape(-1, dim),
                               commit_grad)
    upstream = torch.randn(z.shape, generator=rng, dtype=torch.float64)
    (grad,) = torch.autograd.grad(out.quantized, z, upstream)
    torch.testing.assert_close(grad, upstream, rtol=0, atol=0)
    torch.testing.assert_close(rvq.embed_indices(out.indices),
                               out.quantized.detach())
