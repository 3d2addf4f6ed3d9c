import math

import pytest
import torch
import vqgan_reference as reference

from fqzoo.models.decoders import VQGANDecoder
from fqzoo.models.encoders import VQGANEncoder

# The reference: the VQGAN / LlamaGen trunks written out with torch
# functional ops on the modules' parameters, by their key names (the
# released layout; tests/vqgan_reference.py).
GROUPS = 4  # num_groups of the tiny trunks below (divides 8 and 16)


def encoder_by_hand(enc, x, ch_mult, blocks):
    return reference.encoder(x, dict(enc.named_parameters()), len(ch_mult),
                             blocks, GROUPS)


def decoder_by_hand(dec, z, ch_mult, blocks):
    return reference.decoder(z, dict(dec.named_parameters()), len(ch_mult),
                             blocks, GROUPS)


@pytest.mark.parametrize('ch_mult,blocks,factor', [((1, 2), 2, 2),
                                                   ((1, 1, 2), 1, 4)])
def test_encoder_decoder_match_functional_ops_by_hand(ch_mult, blocks,
                                                      factor):
    torch.manual_seed(0)
    kwargs = dict(ch=8, ch_mult=ch_mult, num_res_blocks=blocks,
                  z_channels=6, num_groups=GROUPS)
    enc, dec = VQGANEncoder(**kwargs), VQGANDecoder(**kwargs)
    for module in (enc, dec):  # norms away from the identity init
        for name, param in module.named_parameters():
            if 'norm' in name:
                torch.nn.init.normal_(param, mean=float('weight' in name),
                                      std=0.3)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        z = enc(x)
        expected_z = encoder_by_hand(enc, x, ch_mult, blocks)
        assert enc.downsample_factor == factor
        assert expected_z.shape == (2, 6, 16 // factor, 16 // factor)
        torch.testing.assert_close(z, expected_z)
        torch.testing.assert_close(dec(z), decoder_by_hand(dec, z, ch_mult,
                                                           blocks))


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


def _changed(a, b):
    """Rows and columns where two ``[1, C, H, W]`` maps differ."""
    rows, cols = ((a - b).abs().amax(dim=(0, 1)) > 1e-12).nonzero(
        as_tuple=True)
    return (int(rows.min()), int(rows.max())), (int(cols.min()),
                                                int(cols.max()))


def test_one_pixel_changes_exactly_its_receptive_field():
    """Per-position norm, no attention, ch_mult (1, 2), one residual block:
    a pixel reaches exactly the features its receptive field, worked out by
    hand layer by layer, covers (float64, so nothing else moves at all)."""
    torch.manual_seed(0)
    kwargs = dict(ch=8, ch_mult=(1, 2), num_res_blocks=1, z_channels=4,
                  norm='pixel', attention=False)
    enc = VQGANEncoder(**kwargs).double()
    x = torch.randn(1, 3, 48, 48, dtype=torch.double)
    y = x.clone()
    y[0, :, 20, 27] += 3.0
    with torch.no_grad():
        rows, cols = _changed(enc(x), enc(y))

    def feature_range(p, size=24):
        # conv_in and level 0's block (two 3x3 convs): p +- 3 at full size;
        # the stride-2 conv over rows 2j..2j+2 (padding right/bottom):
        # 2j <= i <= 2j + 2; then level 1's block, the two middle blocks and
        # conv_out: seven 3x3 convs, +- 7.
        low, high = math.ceil((p - 3 - 2) / 2), (p + 3) // 2
        return max(low - 7, 0), min(high + 7, size - 1)

    assert (rows, cols) == (feature_range(20), feature_range(27)) == \
        ((1, 18), (4, 22))

    dec = VQGANDecoder(**kwargs).double()
    z = torch.randn(1, 4, 32, 32, dtype=torch.double)
    w = z.clone()
    w[0, :, 13, 18] += 3.0
    with torch.no_grad():
        rows, cols = _changed(dec(z), dec(w))

    def pixel_range(j, size=64):
        # conv_in, two middle blocks, level 0's two blocks: nine 3x3 convs,
        # j +- 9; nearest x2: 2j, 2j + 1; the upsample conv, level 1's two
        # blocks and conv_out: six 3x3 convs, +- 6.
        return max(2 * (j - 9) - 6, 0), min(2 * (j + 9) + 1 + 6, size - 1)

    assert (rows, cols) == (pixel_range(13), pixel_range(18)) == \
        ((2, 51), (12, 61))
