import torch

from fqzoo.models.quantizers import LookupFreeQuantizer
from fqzoo.models.quantizers.lfq import bits_to_indices, indices_to_bits, sign_codebook


def test_bits_round_trip():
    indices = torch.arange(2 ** 6)
    assert torch.equal(bits_to_indices(indices_to_bits(indices, 6)), indices)
    assert sign_codebook(3)[5].tolist() == [1.0, -1.0, 1.0]


def test_sign_quantization_and_index():
    lfq = LookupFreeQuantizer(embed_dim=3, entropy_groups=1).eval()
    out = lfq(torch.tensor([0.3, -2.0, 5.0]).view(1, 3, 1, 1))
    assert out.quantized.flatten().tolist() == [1.0, -1.0, 1.0]
    assert out.indices.item() == 0b101


def test_grouped_entropy_at_2_pow_18():
    lfq = LookupFreeQuantizer(embed_dim=18, entropy_groups=2).train()
    z = torch.randn(2, 18, 4, 4, requires_grad=True)
    out = lfq(z)
    assert lfq.codebook_size == 2 ** 18
    out.losses['loss_entropy'].backward()
    assert torch.isfinite(z.grad).all()
