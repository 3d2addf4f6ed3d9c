"""VQGANDecoder behaviour that mutation testing showed no test pinned down
(docs/testing.md lists the mutants these tests kill).

The reference is the docstring: the decoder takes the arguments of
:class:`VQGANEncoder` with its defaults (3 image channels, width 128,
multipliers (1, 1, 2, 2, 4), 2 residual blocks per level, 256 latent
channels, no dropout, 32 GroupNorm groups, attention on), has
``num_res_blocks + 1`` residual blocks per level and attention at the
lowest resolution.
"""
import pytest
import torch
import vqgan_reference as reference
from torch import nn

from fqzoo.models.decoders import VQGANDecoder
from fqzoo.models.encoders.vqgan import AttnBlock, ChannelAffine, PixelNorm


def test_defaults_are_the_encoders_paper_scale():
    with torch.device('meta'):
        dec = VQGANDecoder()
    assert dec.z_channels == 256
    assert (dec.conv_in.in_channels, dec.conv_in.out_channels) == (256, 512)
    assert (dec.conv_out.in_channels, dec.conv_out.out_channels) == (128, 3)
    widths = [block.res[-1].conv2.out_channels for block in dec.conv_blocks]
    assert widths == [512, 256, 256, 128, 128]  # (1, 1, 2, 2, 4) reversed
    assert [len(block.res) for block in dec.conv_blocks] == [3] * 5
    # attention at the lowest resolution (the first level) and in the middle
    assert [len(block.attn) for block in dec.conv_blocks] == [3, 0, 0, 0, 0]
    assert isinstance(dec.mid[1], AttnBlock)
    assert [hasattr(block, 'upsample') for block in dec.conv_blocks] == \
        [True] * 4 + [False]
    dropouts = [m for m in dec.modules() if isinstance(m, nn.Dropout)]
    assert len(dropouts) == 2 + 15 and all(m.p == 0.0 for m in dropouts)
    norms = [m for m in dec.modules() if isinstance(m, nn.GroupNorm)]
    assert norms and all(type(m) is nn.GroupNorm and m.num_groups == 32
                         for m in norms)


def test_default_decoder_has_no_dropout_noise_in_training():
    """Dropout defaults to 0: two training-mode passes agree."""
    torch.manual_seed(0)
    dec = VQGANDecoder(ch=8, ch_mult=(1, 2), num_res_blocks=1,
                       z_channels=4).train()
    z = torch.randn(1, 4, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(dec(z), dec(z), rtol=0, atol=0)


def test_one_block_per_level_keeps_its_attention():
    """``num_res_blocks=0``: one residual block per level, still followed
    by attention at the lowest resolution (the functional reference of
    tests/vqgan_reference.py)."""
    torch.manual_seed(0)
    dec = VQGANDecoder(ch=8, ch_mult=(1, 2), num_res_blocks=0,
                       z_channels=4, num_groups=4).eval()
    assert [len(block.attn) for block in dec.conv_blocks] == [1, 0]
    z = torch.randn(2, 4, 4, 4)
    with torch.no_grad():
        expected = reference.decoder(z, dict(dec.named_parameters()), 2, 0, 4)
        out = dec(z)
    assert out.shape == (2, 3, 8, 8)  # f = 2: [B, out_channels, 2h, 2w]
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize('norm,kind', [('pixel', PixelNorm),
                                       ('none', ChannelAffine)])
def test_norm_choice_reaches_every_norm_layer(norm, kind):
    """``norm`` picks the norm of every layer: the residual blocks', the
    attention blocks' (level 0 and the middle) and ``norm_out``."""
    dec = VQGANDecoder(ch=8, ch_mult=(1, 2), num_res_blocks=1,
                       z_channels=4, norm=norm, attention=True)
    attention = [m for m in dec.modules() if isinstance(m, AttnBlock)]
    assert len(attention) == 3  # two at level 0, one in the middle
    norms = [m for m in dec.modules() if isinstance(m, nn.GroupNorm)]
    # 2 per residual block (2 middle + 2 + 2 levels), 1 per attention, out
    assert len(norms) == 2 * 6 + 3 + 1
    assert all(type(m) is kind for m in norms)


def test_without_attention_no_attention_block_anywhere():
    """``attention=False``: no attention at level 0 nor in the middle (an
    identity keeps the middle's keys ``mid.0`` and ``mid.2``)."""
    dec = VQGANDecoder(ch=8, ch_mult=(1, 2), num_res_blocks=1,
                       z_channels=4, attention=False)
    assert not any(isinstance(m, AttnBlock) for m in dec.modules())
    assert isinstance(dec.mid[1], nn.Identity)
