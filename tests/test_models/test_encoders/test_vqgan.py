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


def test_pixel_norm_is_layer_norm_over_channels():
    from fqzoo.models.encoders.vqgan import PixelNorm
    norm = PixelNorm(6)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    x = torch.randn(2, 6, 5, 7) * 3 + 1
    ref = torch.nn.LayerNorm(6, eps=1e-6)
    ref.load_state_dict(norm.state_dict())
    expected = ref(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    torch.testing.assert_close(norm(x), expected)
    # Each position is normalised alone: changing one pixel changes no other.
    y = x.clone()
    y[:, :, 0, 0] += 5
    assert torch.equal(norm(y)[:, :, 1:], norm(x)[:, :, 1:])


def test_no_norm_is_a_channel_affine_keeping_each_positions_scale():
    from fqzoo.models.encoders.vqgan import ChannelAffine
    norm = ChannelAffine(6)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    x = torch.randn(2, 6, 5, 7) * 3 + 1
    # The same as a depthwise 1x1 convolution with the norm's parameters.
    expected = torch.nn.functional.conv2d(x, norm.weight.view(6, 1, 1, 1),
                                          norm.bias, groups=6)
    torch.testing.assert_close(norm(x), expected)
    # Unlike PixelNorm it keeps a position's scale: 2x in, 2x out (bias off).
    torch.nn.init.zeros_(norm.bias)
    torch.testing.assert_close(norm(2 * x), 2 * norm(x))
    assert set(norm.state_dict()) == {'weight', 'bias'}


def test_unknown_norm_is_named():
    with pytest.raises(ValueError, match="'none'.*got 'batch'"):
        VQGANEncoder(ch=8, ch_mult=(1, 2), norm='batch')


@pytest.mark.parametrize('norm,attention,local', [
    ('pixel', False, True), ('none', False, True), ('group', False, False),
    ('pixel', True, False)])
def test_trunk_is_local_only_with_local_norm_and_no_attention(
        norm, attention, local):
    """With per-position norms (or none) and no attention, a feature depends
    only on the pixels in its receptive field: encoding a crop gives the same
    interior features as encoding the whole image. GroupNorm or attention
    mix in statistics of the whole input, so the two differ."""
    torch.manual_seed(0)
    kwargs = dict(ch=8, ch_mult=(1, 2, 2), num_res_blocks=1, z_channels=4,
                  norm=norm, attention=attention)
    enc = VQGANEncoder(**kwargs).eval()
    image = torch.randn(1, 3, 192, 192)
    with torch.no_grad():
        whole = enc(image)                         # 48 x 48 features
        crop = enc(image[..., 32:160, 32:160])     # whole's features 8..40
    # 12 features (48 px) in from the crop's border, beyond the receptive
    # field's reach (about 10 features) of the crop edge.
    inner_whole = whole[..., 20:28, 20:28]
    inner_crop = crop[..., 12:20, 12:20]
    if local:
        torch.testing.assert_close(inner_crop, inner_whole, atol=1e-5,
                                   rtol=1e-5)
    else:
        assert (inner_crop - inner_whole).abs().max() > 1e-3

    dec = VQGANDecoder(**kwargs).eval()
    z = torch.randn(1, 4, 48, 48)
    with torch.no_grad():
        full, part = dec(z), dec(z[..., 8:40, 8:40])
    # features 14..18 of the part are 22..26 of the whole, 4 px each
    diff = (part[..., 56:72, 56:72] - full[..., 88:104, 88:104]).abs().max()
    assert (diff < 1e-5) == local
