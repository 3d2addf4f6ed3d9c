import pytest
import torch
import torch.nn.functional as F
from tokenizer_reference import reconstruct_by_hand

from fqzoo.models.encoders import (
    ConvBranchHead,
    TransformerBranchHead,
    VQGANEncoder,
    VQGANTrunk,
)
from fqzoo.registry import MODELS


def _layer_norm(x, norm):
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias


def _group_norm_silu_conv(x, norm, conv, groups):
    """GroupNorm (eps 1e-6) over ``groups`` channel groups, SiLU, 3x3."""
    b, c, h, w = x.shape
    g = x.reshape(b, groups, -1)
    g = (g - g.mean(-1, keepdim=True)) / torch.sqrt(
        g.var(-1, unbiased=False, keepdim=True) + 1e-6)
    y = g.reshape(b, c, h, w) * norm.weight[:, None, None] + \
        norm.bias[:, None, None]
    return F.conv2d(y * torch.sigmoid(y), conv.weight, conv.bias, padding=1)


def _block_by_hand(x, block, num_heads):
    """Pre-norm block: multi-head softmax(q k^T / sqrt(d)) v from the
    packed in-projection, then a GELU (erf) MLP."""
    b, length, c = x.shape
    d = c // num_heads
    attn = block.attn
    y = _layer_norm(x, block.norm1)
    q, k, v = (y @ attn.in_proj_weight.t() + attn.in_proj_bias).split(c, -1)
    q, k, v = (t.reshape(b, length, num_heads, d).transpose(1, 2)
               for t in (q, k, v))
    weights = torch.softmax(q @ k.transpose(-1, -2) / d ** 0.5, dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(b, length, c)
    x = x + out @ attn.out_proj.weight.t() + attn.out_proj.bias
    hidden = _layer_norm(x, block.norm2) @ block.mlp.fc1.weight.t() + \
        block.mlp.fc1.bias
    hidden = 0.5 * hidden * (1 + torch.erf(hidden / 2 ** 0.5))
    return x + hidden @ block.mlp.fc2.weight.t() + block.mlp.fc2.bias


def _randomise_norms(module):
    """Norm scales and shifts away from their identity init."""
    for name, param in module.named_parameters():
        if 'norm' in name or name.startswith('ln_'):
            torch.nn.init.normal_(param, mean=float('weight' in name),
                                  std=0.3)


def transformer_head_by_hand(head, x, num_heads, groups):
    """Tokens (through ``proj_in`` written as ``x W^T + b`` when the head
    has one) plus the positional embedding (as is at the trained grid,
    bicubic-resampled otherwise), LayerNorm, the blocks, LayerNorm,
    GroupNorm, SiLU and a 3x3 conv, written out with tensor ops."""
    b, _, height, width = x.shape
    grid_size = head.grid_size
    pos = head.positional_embedding
    channels = pos.shape[1]
    if (height, width) != (grid_size, grid_size):
        grid = pos.reshape(grid_size, grid_size, channels).permute(2, 0, 1)
        grid = F.interpolate(grid[None], size=(height, width),
                             mode='bicubic', align_corners=False)
        pos = grid[0].permute(1, 2, 0).reshape(height * width, channels)
    tokens = x.flatten(2).transpose(1, 2)
    if isinstance(head.proj_in, torch.nn.Linear):
        tokens = tokens @ head.proj_in.weight.t() + head.proj_in.bias
    tokens = _layer_norm(tokens + pos, head.ln_pre)
    for block in head.blocks:
        tokens = _block_by_hand(tokens, block, num_heads)
    tokens = _layer_norm(tokens, head.ln_post)
    grid = tokens.transpose(1, 2).reshape(b, channels, height, width)
    return _group_norm_silu_conv(grid, head.norm_out, head.conv_out, groups)


@pytest.mark.parametrize('height,width', [(4, 4), (6, 5)])
def test_transformer_head_matches_functional_ops_by_hand(height, width):
    torch.manual_seed(0)
    head = TransformerBranchHead(in_channels=32, out_channels=16,
                                 num_layers=2, num_heads=4, grid_size=4,
                                 num_groups=8)
    _randomise_norms(head)
    x = torch.randn(2, 32, height, width)
    with torch.no_grad():
        expected = transformer_head_by_hand(head, x, num_heads=4, groups=8)
        out = head(x)
    assert head.out_channels == 16
    assert expected.shape == (2, 16, height, width)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)


def test_transformer_head_pos_embed_interpolation():
    head = TransformerBranchHead(in_channels=8, out_channels=8, num_layers=1,
                                 num_heads=2, grid_size=4, num_groups=4)
    # At the trained grid the embedding is used as is; at others it is
    # resampled (a constant embedding stays constant).
    with torch.no_grad():
        head.positional_embedding.fill_(0.5)
    x = torch.randn(1, 8, 6, 10)
    assert head(x).shape == (1, 8, 6, 10)
    from fqzoo.models.encoders.branch_heads import resize_pos_embed
    pos = resize_pos_embed(head.positional_embedding, 4, 6, 10)
    assert pos.shape == (60, 8)
    assert torch.allclose(pos, torch.full_like(pos, 0.5), atol=1e-5)
    assert resize_pos_embed(head.positional_embedding, 4, 4, 4) is \
        head.positional_embedding


def test_transformer_head_proj_in_only_when_width_differs():
    same = TransformerBranchHead(in_channels=16, out_channels=8,
                                 num_layers=1, num_heads=2, grid_size=2)
    wider = TransformerBranchHead(in_channels=16, out_channels=8, width=32,
                                  num_layers=1, num_heads=2, grid_size=2)
    assert isinstance(same.proj_in, torch.nn.Identity)
    assert isinstance(wider.proj_in, torch.nn.Linear)
    _randomise_norms(wider)
    x = torch.randn(2, 16, 2, 2)
    with torch.no_grad():
        torch.testing.assert_close(
            wider(x), transformer_head_by_hand(wider, x, num_heads=2,
                                               groups=32),
            atol=1e-5, rtol=1e-4)


def test_transformer_head_gradient_flows():
    head = TransformerBranchHead(in_channels=8, out_channels=4, num_layers=1,
                                 num_heads=2, grid_size=2)
    x = torch.randn(2, 8, 3, 3, requires_grad=True)
    head(x).sum().backward()
    assert x.grad.abs().sum() > 0
    assert head.positional_embedding.grad.abs().sum() > 0


@pytest.mark.parametrize('size', [4, 7])
def test_conv_head_matches_functional_ops_by_hand(size):
    """Two residual blocks (norm, SiLU, 3x3 conv, twice, plus the input),
    then GroupNorm, SiLU and a 3x3 conv to ``out_channels``."""
    torch.manual_seed(0)
    head = MODELS.build(dict(type='ConvBranchHead', in_channels=16,
                             out_channels=8, num_blocks=2, num_groups=4))
    assert isinstance(head, ConvBranchHead)
    _randomise_norms(head)
    x = torch.randn(2, 16, size, size)
    with torch.no_grad():
        h = x
        for block in head.blocks:
            r = _group_norm_silu_conv(h, block.norm1, block.conv1, groups=4)
            h = h + _group_norm_silu_conv(r, block.norm2, block.conv2,
                                          groups=4)
        expected = _group_norm_silu_conv(h, head.norm_out, head.conv_out,
                                         groups=4)
        torch.testing.assert_close(head(x), expected, atol=1e-5, rtol=1e-4)
    assert expected.shape == (2, 8, size, size)


def test_trunk_is_encoder_without_output_conv():
    kwargs = dict(ch=8, ch_mult=(1, 2), num_res_blocks=1)
    trunk = VQGANTrunk(**kwargs)
    enc = VQGANEncoder(z_channels=4, **kwargs)
    trunk.load_state_dict(enc.state_dict(), strict=False)
    assert set(trunk.state_dict()) == {
        k for k in enc.state_dict() if not k.startswith(('norm_out', 'conv_out'))}
    assert trunk.z_channels == 16
    # its output is what the encoder feeds its output norm
    seen = {}
    enc.norm_out.register_forward_hook(
        lambda module, args, out: seen.update(mid=args[0]))
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        enc(x)
        torch.testing.assert_close(trunk(x), seen['mid'], atol=0, rtol=0)
    assert seen['mid'].shape == (1, 16, 8, 8)
    with pytest.raises(TypeError, match='z_channels'):
        VQGANTrunk(z_channels=4, **kwargs)


def test_tokenizer_with_transformer_heads_changes_channels():
    model = MODELS.build(dict(
        type='ImageTokenizer',
        encoder=dict(type='VQGANTrunk', ch=8, ch_mult=(1, 2),
                     num_res_blocks=1),
        heads=dict(type='TransformerBranchHead', in_channels=16,
                   out_channels=8, num_layers=1, num_heads=2, grid_size=4),
        quantizer=dict(type='FactorizedQuantizer', num_codebooks=2,
                       quantizer=dict(type='VectorQuantizer',
                                      codebook_size=16, embed_dim=4)),
        decoder=dict(type='VQGANDecoder', ch=8, ch_mult=(1, 2),
                     num_res_blocks=1, z_channels=8))).eval()
    assert model.quant_convs[0].in_channels == 8
    rng = torch.Generator().manual_seed(0)
    for size in (8, 16):  # the trained 4x4 grid and a resampled 8x8 one
        images = torch.rand(2, 3, size, size, generator=rng) * 2 - 1
        # modules run one by one, nearest codes by a direct cdist argmin
        recon, expected = reconstruct_by_hand(model, images)
        assert expected.shape == (2, 2, size // 2, size // 2)
        idx = model.encode(images)
        assert torch.equal(idx, expected)
        torch.testing.assert_close(model.decode(idx), recon)
