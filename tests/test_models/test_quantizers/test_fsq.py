import torch

from fqzoo.models.quantizers import FSQ


def test_index_round_trip_covers_the_grid():
    fsq = FSQ(levels=(8, 5, 3))
    indices = torch.arange(fsq.codebook_size)
    codes = fsq.indices_to_codes(indices)
    assert torch.equal(fsq.codes_to_indices(codes), indices)
    assert codes.unique(dim=0).shape[0] == 120
    assert codes.abs().max() <= 1


def test_each_channel_takes_its_number_of_levels():
    fsq = FSQ(levels=(8, 5, 3)).eval()
    z = torch.linspace(-20, 20, 4001).view(1, 1, -1, 1).expand(1, 3, -1, 1)
    q = fsq(z.contiguous()).quantized
    assert [q[0, c].unique().numel() for c in range(3)] == [8, 5, 3]


def test_no_auxiliary_loss():
    assert FSQ().train()(torch.randn(1, 6, 2, 2)).losses == {}
