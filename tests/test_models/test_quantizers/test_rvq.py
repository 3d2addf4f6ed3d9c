import torch

from fqzoo.models.quantizers import ResidualVQ, VectorQuantizer


def rvq(depth, shared=False):
    torch.manual_seed(0)
    return ResidualVQ(depth, dict(type='VectorQuantizer', codebook_size=64,
                                  embed_dim=4, l2_norm=False,
                                  kmeans_init=True), shared)


def test_residual_error_decreases_with_depth():
    torch.manual_seed(1)
    z = torch.randn(4, 4, 8, 8)
    quantizer = rvq(4).train()
    quantizer(z)  # k-means init of every level on its residual
    quantizer.eval()
    indices = quantizer(z).indices
    partial, total = [], 0
    for level, idx in zip(quantizer.levels(), indices.split(1, dim=1)):
        total = total + level.embed_indices(idx)
        partial.append((total - z).pow(2).mean().item())
    assert partial == sorted(partial, reverse=True)
    assert partial[-1] < 0.5 * partial[0]
    assert torch.equal(quantizer.embed_indices(indices), total)


def test_shared_codebook_has_one_quantizer():
    quantizer = rvq(3, shared=True)
    assert len(quantizer.codebooks) == 1
    assert all(isinstance(q, VectorQuantizer) for q in quantizer.levels())
    assert quantizer.num_codebooks == 3
    out = quantizer.eval()(torch.randn(1, 4, 2, 2))
    assert out.indices.shape == (1, 3, 2, 2)
