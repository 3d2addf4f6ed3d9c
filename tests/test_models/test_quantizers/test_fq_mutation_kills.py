"""FactorizedQuantizer behaviour that mutation testing showed no test
pinned down (docs/testing.md lists the mutants these tests kill)."""
from fqzoo.models.quantizers import FactorizedQuantizer, VectorQuantizer


def test_defaults_are_the_papers_two_l2_normalised_vq_codebooks():
    # FQGAN's dual tokenizer: k = 2 sub-codebooks, each a VQ of 16384
    # l2-normalised codes of 8 dimensions
    fq = FactorizedQuantizer()
    assert len(fq.subs) == fq.num_branches == fq.num_codebooks == 2
    for sub in fq.subs:
        assert type(sub) is VectorQuantizer
        assert (sub.codebook_size, sub.embed_dim) == (16384, 8)
        assert sub.l2_norm is True
    assert (fq.codebook_size, fq.embed_dim, fq.in_channels) == (16384, 8, 16)
