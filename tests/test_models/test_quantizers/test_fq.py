import torch

from fqzoo.models.quantizers import FactorizedQuantizer


def small_fq(**sub):
    return FactorizedQuantizer(num_codebooks=3, quantizer=dict(
        type='VectorQuantizer', codebook_size=16, embed_dim=4, **sub))


def test_attributes_follow_sub_quantizer():
    fq = small_fq()
    assert (fq.num_branches, fq.in_channels, fq.num_codebooks) == (3, 12, 3)
    assert (fq.codebook_size, fq.embed_dim) == (16, 4)
    assert len({id(sub.embedding.weight) for sub in fq.subs}) == 3


def test_groups_are_quantized_independently():
    torch.manual_seed(0)
    fq = small_fq().eval()
    z = torch.randn(2, 12, 3, 3)
    out = fq(z)
    for i, sub in enumerate(fq.subs):
        sub_out = sub(z[:, 4 * i:4 * i + 4])
        assert torch.equal(out.indices[:, i:i + 1], sub_out.indices)
        assert torch.equal(out.branches[i], sub_out.quantized)


def test_losses_summed_and_metrics_per_sub_codebook():
    torch.manual_seed(0)
    fq = small_fq().train()
    z = torch.randn(2, 12, 3, 3)
    out = fq(z)
    assert set(out.losses) == {'loss_commit', 'loss_codebook'}
    for key in ('usage', 'perplexity'):
        per_sub = [out.metrics[f'{key}_{i}'] for i in range(3)]
        torch.testing.assert_close(out.metrics[key], torch.stack(per_sub).mean())
    assert len(fq.codebook_stats()) == 3


def test_lfq_sub_quantizers():
    fq = FactorizedQuantizer(2, dict(type='LookupFreeQuantizer', embed_dim=4,
                                     entropy_groups=1))
    out = fq.eval()(torch.randn(1, 8, 2, 2))
    torch.testing.assert_close(fq.embed_indices(out.indices), out.quantized)
