"""Encoder trunks and branch heads: values that mutation testing showed no
test pinned down (docs/testing.md lists the mutants these tests kill).

Defaults come from the docstrings (FQGAN's adapter: width 512, 6 layers,
8 heads, MLP ratio 4, a 16x16 grid, ``z_channels`` 256; LlamaGen's VQGAN
trunk: ``ch`` 128, ``z_channels`` 256, GroupNorm with 32 groups and eps
1e-6, no dropout); references are written out with tensor ops here.
"""
import pytest
import torch
import torch.nn.functional as F

from fqzoo.models.encoders import (
    ConvBranchHead,
    TransformerBranchHead,
    VQGANTrunk,
)
from fqzoo.models.encoders.branch_heads import (
    TransformerBlock,
    resize_pos_embed,
)
from fqzoo.models.encoders.vqgan import (
    AttnBlock,
    ChannelAffine,
    Downsample,
    PixelNorm,
    ResnetBlock,
    VQGANEncoder,
    group_norm,
    mid_block,
)


def _affine(x, norm):
    return x * norm.weight[:, None, None] + norm.bias[:, None, None]


def _randomise(module):
    torch.manual_seed(1)
    for name, param in module.named_parameters():
        if 'norm' in name:
            torch.nn.init.normal_(param, mean=float('weight' in name),
                                  std=0.3)


# --- TransformerBlock and resize_pos_embed -----------------------------------

def test_transformer_block_mlp_is_4x_wide_by_default():
    block = TransformerBlock(16, 2)
    assert block.mlp.fc1.out_features == 64
    assert block.mlp.fc2.in_features == 64
    assert TransformerBlock(16, 2, 2.5).mlp.fc1.out_features == 40


def test_transformer_block_mlp_is_named_like_timms():
    # fc1, act, fc2 (timm's Mlp names), the activation the exact erf GELU.
    mlp = TransformerBlock(8, 2).mlp
    assert [name for name, _ in mlp.named_children()] == ['fc1', 'act',
                                                          'fc2']
    assert isinstance(mlp.act, torch.nn.GELU)
    assert mlp.act.approximate == 'none'


def test_transformer_block_does_not_ask_for_attention_weights():
    """The ``[B, L, L]`` attention weights are never used: the block asks
    attention for its output only (``need_weights=False``), which spares
    their memory and lets torch use its fused kernel."""
    torch.manual_seed(0)
    block = TransformerBlock(8, 2)
    seen = []
    block.attn.register_forward_hook(
        lambda module, args, kwargs, out: seen.append(out[1]),
        with_kwargs=True)
    x = torch.randn(2, 5, 8)
    block(x)
    assert seen == [None]


def test_resize_pos_embed_refuses_a_non_interpolating_mode():
    # Only 'bicubic' / 'bilinear' are documented; 'nearest' fails in torch
    # (align_corners is set) rather than giving a blocky embedding.
    pos = torch.randn(16, 3)
    with pytest.raises(ValueError, match='align_corners'):
        resize_pos_embed(pos, 4, 6, 6, mode='nearest')


# --- TransformerBranchHead ---------------------------------------------------

def test_transformer_head_paper_channels_by_default():
    # No blocks, so the 512-wide paper-scale head stays small.
    head = TransformerBranchHead(num_layers=0)
    assert head.in_channels == 512 and head.out_channels == 256
    assert isinstance(head.proj_in, torch.nn.Identity)
    assert head.positional_embedding.shape == (16 * 16, 512)
    assert head.conv_out.in_channels == 512
    assert head.conv_out.out_channels == 256
    out = head(torch.randn(1, 512, 2, 2))
    assert out.shape == (1, 256, 2, 2)


def test_transformer_head_paper_adapter_by_default():
    # 6 blocks of 8 heads with a 4x MLP over a 16x16 grid.
    head = TransformerBranchHead(in_channels=16, out_channels=8)
    assert head.in_channels == 16 and head.grid_size == 16
    assert head.positional_embedding.shape == (256, 16)
    assert len(head.blocks) == 6
    for block in head.blocks:
        assert block.attn.num_heads == 8 and block.attn.head_dim == 2
        assert block.mlp.fc1.out_features == 64
        assert block.mlp.fc2.in_features == 64


def test_transformer_head_passes_its_mlp_ratio_to_every_block():
    head = TransformerBranchHead(in_channels=16, out_channels=8,
                                 num_layers=2, num_heads=2, mlp_ratio=2.5,
                                 grid_size=2)
    assert [b.mlp.fc1.out_features for b in head.blocks] == [40, 40]


def test_transformer_head_keeps_in_channels():
    head = TransformerBranchHead(in_channels=12, out_channels=8, width=16,
                                 num_layers=1, num_heads=2, grid_size=2)
    assert head.in_channels == 12 and head.proj_in.in_features == 12


def test_positional_embedding_starts_at_std_one_over_sqrt_width():
    # width ** -0.5 * N(0, 1): std 1/8 at width 64 (16384 draws, so the
    # sample std is within 2% of it).
    torch.manual_seed(0)
    head = TransformerBranchHead(in_channels=64, out_channels=8,
                                 num_layers=0, grid_size=16)
    pos = head.positional_embedding.detach()
    assert abs(pos.std().item() - 0.125) < 0.0025
    assert abs(pos.mean().item()) < 0.005
    assert pos.abs().max().item() < 6 * 0.125


@pytest.mark.parametrize('mode', ['nearest', 'bicubic2'])
def test_unknown_pos_interpolation_is_named(mode):
    with pytest.raises(ValueError) as info:
        TransformerBranchHead(in_channels=8, out_channels=8, num_layers=0,
                              pos_interpolation=mode)
    assert str(info.value) == ('pos_interpolation must be "bicubic" or '
                               f'"bilinear", got "{mode}"')


def test_autocast_tokens_and_positional_embedding_share_a_dtype():
    """Under bf16 autocast ``proj_in`` gives bf16 tokens; the embedding is
    rounded to bf16 and added in bf16, so ``ln_pre`` sees bf16 tokens
    (adding the float32 embedding would promote them to float32)."""
    torch.manual_seed(0)
    head = TransformerBranchHead(in_channels=8, out_channels=4, width=16,
                                 num_layers=1, num_heads=2, grid_size=2,
                                 num_groups=4)
    seen = {}
    head.proj_in.register_forward_hook(
        lambda module, args, out: seen.update(tokens=out))
    head.ln_pre.register_forward_pre_hook(
        lambda module, args: seen.update(summed=args[0]))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        head(torch.randn(1, 8, 2, 2))
    assert seen['tokens'].dtype == torch.bfloat16
    assert seen['summed'].dtype == torch.bfloat16
    pos = head.positional_embedding.detach().to(torch.bfloat16)
    assert torch.equal(seen['summed'], seen['tokens'] + pos)


# --- ConvBranchHead ----------------------------------------------------------

def test_conv_head_defaults_one_block_32_groups_same_channels():
    head = ConvBranchHead(in_channels=64)
    assert head.in_channels == 64 and head.out_channels == 64
    assert len(head.blocks) == 1
    norms = [head.blocks[0].norm1, head.blocks[0].norm2, head.norm_out]
    assert [n.num_groups for n in norms] == [32, 32, 32]
    # The output norm normalises 32 groups of 2 channels.
    _randomise(head)
    x = torch.randn(2, 64, 3, 3) * 2 + 1
    expected = F.group_norm(x, 32, head.norm_out.weight, head.norm_out.bias,
                            1e-6)
    with torch.no_grad():
        torch.testing.assert_close(head.norm_out(x), expected)


def test_conv_head_keeps_in_channels():
    head = ConvBranchHead(in_channels=8, out_channels=4, num_groups=4)
    assert head.in_channels == 8 and head.out_channels == 4


def test_conv_head_without_norm_matches_ops_by_hand():
    """``norm='none'`` reaches every block and the output norm: each is a
    per-channel scale and shift, so the head is written out here with
    convolutions and affines only."""
    head = ConvBranchHead(in_channels=6, out_channels=4, num_blocks=2,
                          num_groups=2, norm='none')
    _randomise(head)
    x = torch.randn(2, 6, 5, 5) * 3 + 1
    h = x
    with torch.no_grad():
        for block in head.blocks:
            r = F.conv2d(F.silu(_affine(h, block.norm1)), block.conv1.weight,
                         block.conv1.bias, padding=1)
            r = F.conv2d(F.silu(_affine(r, block.norm2)), block.conv2.weight,
                         block.conv2.bias, padding=1)
            h = h + r
        expected = F.conv2d(F.silu(_affine(h, head.norm_out)),
                            head.conv_out.weight, head.conv_out.bias,
                            padding=1)
        torch.testing.assert_close(head(x), expected, atol=1e-5, rtol=1e-4)


# --- VQGANTrunk --------------------------------------------------------------

def test_trunk_refuses_z_channels_by_name():
    with pytest.raises(TypeError) as info:
        VQGANTrunk(ch=8, ch_mult=(1, 2), num_res_blocks=1, z_channels=4)
    assert str(info.value) == ('VQGANTrunk has no z_channels: its output '
                               'has ch * ch_mult[-1] channels')


# --- PixelNorm and ChannelAffine ---------------------------------------------

@pytest.mark.parametrize('channels', [3, 5])
def test_channel_affine_takes_any_channel_count(channels):
    norm = ChannelAffine(channels)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    x = torch.randn(2, channels, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(norm(x), _affine(x, norm))


@pytest.mark.parametrize('channels', [3, 5])
def test_pixel_norm_takes_any_channel_count(channels):
    norm = PixelNorm(channels)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    x = torch.randn(2, channels, 4, 4) * 2 + 1
    mean = x.mean(1, keepdim=True)
    var = x.var(1, unbiased=False, keepdim=True)
    with torch.no_grad():
        torch.testing.assert_close(
            norm(x), _affine((x - mean) / torch.sqrt(var + 1e-6), norm))


# --- group_norm, ResnetBlock and AttnBlock defaults --------------------------

def _gn(x, norm, groups):
    """GroupNorm with eps 1e-6 written out: each group of channels to zero
    mean and unit variance, then the per-channel scale and shift."""
    b, c, h, w = x.shape
    g = x.reshape(b, groups, -1)
    g = (g - g.mean(-1, keepdim=True)) / torch.sqrt(
        g.var(-1, unbiased=False, keepdim=True) + 1e-6)
    return _affine(g.reshape(b, c, h, w), norm)


def _conv(x, conv):
    return F.conv2d(x, conv.weight, conv.bias, padding=conv.padding)


def _attention_by_hand(x, block, norm):
    """Single-head softmax(q k^T / sqrt(C)) v over the h*w positions."""
    b, c, h, w = x.shape
    y = norm(x)
    q, k, v = (_conv(y, m).reshape(b, c, h * w)
               for m in (block.q, block.k, block.v))
    weights = torch.softmax(q.transpose(1, 2) @ k / c ** 0.5, dim=-1)
    out = (v @ weights.transpose(1, 2)).reshape(b, c, h, w)
    return x + _conv(out, block.proj_out)


def test_group_norm_has_32_groups_by_default():
    norm = group_norm(64)
    assert type(norm) is torch.nn.GroupNorm
    assert (norm.num_groups, norm.eps) == (32, 1e-6)
    _randomise(torch.nn.ModuleDict({'norm': norm}))
    x = torch.randn(2, 64, 3, 3) * 2 + 1
    with torch.no_grad():
        torch.testing.assert_close(norm(x), _gn(x, norm, 32))


def test_resnet_block_defaults_group_norm_32_groups_no_dropout():
    block = ResnetBlock(64, 64)  # left in training mode: dropout would act
    assert type(block.norm1) is torch.nn.GroupNorm
    assert type(block.norm2) is torch.nn.GroupNorm
    _randomise(block)
    x = torch.randn(2, 64, 4, 4) * 2 + 1
    with torch.no_grad():
        h = _conv(F.silu(_gn(x, block.norm1, 32)), block.conv1)
        h = _conv(F.silu(_gn(h, block.norm2, 32)), block.conv2)
        torch.testing.assert_close(block(x), x + h, atol=1e-5, rtol=1e-4)


def test_attn_block_defaults_group_norm_32_groups():
    block = AttnBlock(64)
    assert type(block.norm) is torch.nn.GroupNorm
    _randomise(block)
    x = torch.randn(2, 64, 3, 3) * 2 + 1
    with torch.no_grad():
        expected = _attention_by_hand(x, block,
                                      lambda t: _gn(t, block.norm, 32))
        torch.testing.assert_close(block(x), expected, atol=1e-5,
                                   rtol=1e-4)


def test_attn_block_without_norm_is_attention_on_a_channel_affine():
    block = AttnBlock(6, num_groups=2, norm='none')
    assert isinstance(block.norm, ChannelAffine)
    _randomise(block)
    x = torch.randn(2, 6, 3, 4) * 3 + 1
    with torch.no_grad():
        expected = _attention_by_hand(x, block,
                                      lambda t: _affine(t, block.norm))
        torch.testing.assert_close(block(x), expected, atol=1e-5,
                                   rtol=1e-4)


# --- mid_block, Downsample and the encoder's norms ---------------------------

def test_mid_block_defaults_group_norm_with_attention():
    mid = mid_block(64, 0.0, 32)
    assert [type(m) for m in mid] == [ResnetBlock, AttnBlock, ResnetBlock]
    norms = [mid[0].norm1, mid[0].norm2, mid[1].norm, mid[2].norm1,
             mid[2].norm2]
    assert all(type(n) is torch.nn.GroupNorm for n in norms)
    assert {n.num_groups for n in norms} == {32}
    assert isinstance(mid_block(64, 0.0, 32, attention=False)[1],
                      torch.nn.Identity)


@pytest.mark.parametrize('norm,kind', [('none', ChannelAffine),
                                       ('pixel', PixelNorm)])
def test_encoder_norm_reaches_every_norm(norm, kind):
    enc = VQGANEncoder(ch=8, ch_mult=(1, 2), num_res_blocks=1, z_channels=4,
                       num_groups=4, norm=norm)
    norms = {name: type(m) for name, m in enc.named_modules()
             if isinstance(m, torch.nn.GroupNorm)}
    # 2 per residual block (2 in the levels, 2 in the middle), 1 per
    # attention block (1 at the lowest level, 1 in the middle), norm_out
    assert len(norms) == 11 and 'mid.1.norm' in norms
    assert set(norms.values()) == {kind}, norms


@pytest.mark.parametrize('height,width', [(5, 7), (6, 4)])
def test_downsample_pads_one_zero_row_and_column_at_the_end(height, width):
    """VQGAN's asymmetric padding: the input gets one zero row at the
    bottom and one zero column at the right, then a 3x3 stride-2 conv, so
    output (i, j) sees input rows 2i..2i+2 and columns 2j..2j+2."""
    torch.manual_seed(0)
    down = Downsample(2)
    x = torch.randn(1, 2, height, width)
    padded = torch.zeros(1, 2, height + 1, width + 1)
    padded[..., :height, :width] = x
    out_h, out_w = (height - 2) // 2 + 1, (width - 2) // 2 + 1
    expected = torch.empty(1, 2, out_h, out_w)
    for i in range(out_h):
        for j in range(out_w):
            window = padded[0, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
            expected[0, :, i, j] = (
                (down.conv.weight * window).sum((1, 2, 3)) + down.conv.bias)
    with torch.no_grad():
        torch.testing.assert_close(down(x), expected)


def test_encoder_paper_widths_by_default():
    # ch 128, z_channels 256, 32 groups; one level keeps it small.
    enc = VQGANEncoder(ch_mult=(1, ), num_res_blocks=1)
    assert enc.conv_in.out_channels == 128
    assert enc.z_channels == 256 and enc.conv_out.out_channels == 256
    norms = [m for m in enc.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert len(norms) == 9
    assert {(type(n), n.num_groups) for n in norms} == {
        (torch.nn.GroupNorm, 32)}


@pytest.mark.parametrize('levels', [4, 5])
def test_downsample_factor_is_two_to_the_levels_minus_one(levels):
    enc = VQGANEncoder(ch=4, ch_mult=(1, ) * levels, num_res_blocks=1,
                       z_channels=2, num_groups=2, attention=False)
    out = enc(torch.randn(1, 3, 32, 32))
    assert enc.downsample_factor == 2 ** (levels - 1)
    assert out.shape[-1] == 32 // enc.downsample_factor
