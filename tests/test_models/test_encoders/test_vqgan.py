import pytest
import torch

from fqzoo.models.decoders import VQGANDecoder
from fqzoo.models.encoders import VQGANEncoder


@pytest.mark.parametrize('ch_mult,factor', [((1, 2), 2), ((1, 1, 2), 4)])
def test_encoder_decoder_shapes(ch_mult, factor):
    enc = VQGANEncoder(ch=8, ch_mult=ch_mult, num_res_blocks=1, z_channels=6)
    dec = VQGANDecoder(ch=8, ch_mult=ch_mult, num_res_blocks=1, z_channels=6)
    x = torch.randn(2, 3, 16, 16)
    z = enc(x)
    assert z.shape == (2, 6, 16 // factor, 16 // factor)
    assert enc.downsample_factor == factor
    assert dec(z).shape == x.shape


def test_paper_scale_trunk_matches_llamagen_vq16_size():
    # LlamaGen reports 72M parameters for VQ-16: encoder, decoder, the two
    # 1x1 convs (256 <-> 8) and the 16384 x 8 codebook.
    enc, dec = VQGANEncoder(), VQGANDecoder()
    n_enc = sum(p.numel() for p in enc.parameters())
    n_dec = sum(p.numel() for p in dec.parameters())
    total = n_enc + n_dec + (256 * 8 + 8) + (8 * 256 + 256) + 16384 * 8
    assert round(total / 1e6) == 72
    assert len(enc.conv_blocks) == 5 and len(enc.conv_blocks[-1].attn) == 2
    assert len(dec.conv_blocks[0].attn) == 3


def test_gradients_reach_the_input():
    enc = VQGANEncoder(ch=8, ch_mult=(1, 2), num_res_blocks=1, z_channels=4)
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    enc(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
