import pytest
import torch

from fqzoo.models.encoders import (
    ConvBranchHead,
    TransformerBranchHead,
    VQGANEncoder,
    VQGANTrunk,
)
from fqzoo.registry import MODELS


@pytest.mark.parametrize('size', [4, 8])
def test_transformer_head_shapes_at_two_resolutions(size):
    head = TransformerBranchHead(in_channels=32, out_channels=16,
                                 num_layers=2, num_heads=4, grid_size=4)
    out = head(torch.randn(2, 32, size, size))
    assert out.shape == (2, 16, size, size)
    assert head.out_channels == 16


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
    assert wider(torch.randn(1, 16, 2, 2)).shape == (1, 8, 2, 2)


def test_transformer_head_gradient_flows():
    head = TransformerBranchHead(in_channels=8, out_channels=4, num_layers=1,
                                 num_heads=2, grid_size=2)
    x = torch.randn(2, 8, 3, 3, requires_grad=True)
    head(x).sum().backward()
    assert x.grad.abs().sum() > 0
    assert head.positional_embedding.grad.abs().sum() > 0


@pytest.mark.parametrize('size', [4, 7])
def test_conv_head_shapes(size):
    head = MODELS.build(dict(type='ConvBranchHead', in_channels=16,
                             out_channels=8, num_blocks=2))
    assert isinstance(head, ConvBranchHead)
    assert head(torch.randn(2, 16, size, size)).shape == (2, 8, size, size)


def test_trunk_is_encoder_without_output_conv():
    kwargs = dict(ch=8, ch_mult=(1, 2), num_res_blocks=1)
    trunk = VQGANTrunk(**kwargs)
    enc = VQGANEncoder(z_channels=4, **kwargs)
    trunk.load_state_dict(enc.state_dict(), strict=False)
    assert set(trunk.state_dict()) == {
        k for k in enc.state_dict() if not k.startswith(('norm_out', 'conv_out'))}
    assert trunk.z_channels == 16
    x = torch.randn(1, 3, 16, 16)
    assert trunk(x).shape == (1, 16, 8, 8)
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
    for size in (8, 16):
        idx = model.encode(torch.rand(1, 3, size, size) * 2 - 1)
        assert idx.shape == (1, 2, size // 2, size // 2)
        assert model.decode(idx).shape == (1, 3, size, size)
