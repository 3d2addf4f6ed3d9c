"""FactorizedTokenEmbedding against the concatenated tables and the linear
layer computed by hand."""
import pytest
import torch

from fqzoo.models.generators import FactorizedTokenEmbedding


def test_concatenated_tables_then_linear_layer():
    torch.manual_seed(0)
    emb = FactorizedTokenEmbedding(width=8, vocab_sizes=[5, 7, 3]).double()
    tokens = torch.stack([torch.randint(v, (2, 4)) for v in (5, 7, 3)], -1)
    concat = torch.cat([emb.tables[g].weight[tokens[..., g]]
                        for g in range(3)], dim=-1)
    expected = concat @ emb.proj.weight.T + emb.proj.bias
    assert emb.proj.weight.shape == (8, 24)
    torch.testing.assert_close(emb(tokens), expected, atol=1e-12, rtol=0)
    for g in range(3):
        torch.testing.assert_close(emb.embed(g, tokens[..., g]),
                                   emb.tables[g].weight[tokens[..., g]])


def test_one_sub_token_is_the_plain_table():
    emb = FactorizedTokenEmbedding(width=8, vocab_sizes=[5])
    tokens = torch.randint(5, (2, 4, 1))
    assert isinstance(emb.proj, torch.nn.Identity)
    assert torch.equal(emb(tokens), emb.tables[0].weight[tokens[..., 0]])
    assert sum(p.numel() for p in emb.parameters()) == 5 * 8


def test_wrong_number_of_sub_tokens():
    emb = FactorizedTokenEmbedding(width=8, vocab_sizes=[5, 7])
    with pytest.raises(ValueError, match='3 sub-tokens.*2 tables'):
        emb(torch.zeros(1, 4, 3, dtype=torch.long))
