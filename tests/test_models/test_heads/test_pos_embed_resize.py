"""Positional-embedding resize on non-square grids, checked against a
reference interpolation of the ``[1, C, H, W]`` grid written here, and by
hand on an embedding that varies along one axis only."""
import pytest
import torch
import torch.nn.functional as F

from fqzoo.models.encoders.branch_heads import (
    TransformerBranchHead,
    resize_pos_embed,
)
from fqzoo.models.teachers.heads import FeaturePredictionHead


def reference_resize(pos, grid, height, width, mode):
    """Row-major ``[grid*grid, C]`` -> ``[1, C, grid, grid]`` ->
    interpolate -> row-major ``[height*width, C]``."""
    channels = pos.shape[1]
    image = pos.reshape(grid, grid, channels).permute(2, 0, 1).unsqueeze(0)
    image = F.interpolate(image, size=(height, width), mode=mode,
                          align_corners=False)
    return image[0].permute(1, 2, 0).reshape(height * width, channels)


def random_pos(grid, channels, seed=0):
    rng = torch.Generator().manual_seed(seed)
    return torch.randn(grid * grid, channels, generator=rng)


@pytest.mark.parametrize('mode', ['bicubic', 'bilinear'])
@pytest.mark.parametrize('height,width', [(4, 6), (6, 4), (12, 10)])
def test_resize_matches_reference_interpolation(mode, height, width):
    pos = random_pos(8, 5)
    out = resize_pos_embed(pos, 8, height, width, mode)
    assert out.shape == (height * width, 5)
    torch.testing.assert_close(out,
                               reference_resize(pos, 8, height, width, mode))


def test_resize_by_hand_on_a_row_ramp():
    # pos[i * 8 + j] = i: the embedding grows down the rows only. Bilinear
    # with align_corners=False samples output row r of 4 at source row
    # (r + 0.5) * 8 / 4 - 0.5 = 2r + 0.5, so row r holds 2r + 0.5 in every
    # one of the 6 columns; a column ramp gives 8/6 (c + 0.5) - 0.5.
    rows = torch.arange(8.0).repeat_interleave(8)
    out = resize_pos_embed(rows[:, None], 8, 4, 6, 'bilinear').reshape(4, 6)
    expected = torch.tensor([0.5, 2.5, 4.5, 6.5])[:, None].expand(4, 6)
    torch.testing.assert_close(out, expected)
    cols = torch.arange(8.0).repeat(8)
    out = resize_pos_embed(cols[:, None], 8, 4, 6, 'bilinear').reshape(4, 6)
    expected = (torch.arange(6.0) + 0.5) * 8 / 6 - 0.5
    torch.testing.assert_close(out, expected.expand(4, 6))


def test_branch_head_uses_the_resized_embedding_row_major():
    """A 4x6 feature map through a head trained for 8x8 equals the head's
    layers applied by hand with the reference-resized embedding."""
    head = TransformerBranchHead(in_channels=8, out_channels=4, num_layers=1,
                                 num_heads=2, grid_size=8, num_groups=4,
                                 pos_interpolation='bilinear').eval()
    with torch.no_grad():
        head.positional_embedding.copy_(3 * random_pos(8, 8, seed=1))
    x = torch.randn(2, 8, 4, 6, generator=torch.Generator().manual_seed(2))
    pos = reference_resize(head.positional_embedding, 8, 4, 6, 'bilinear')
    with torch.no_grad():
        tokens = x.flatten(2).transpose(1, 2) + pos
        tokens = head.blocks[0](head.ln_pre(tokens))
        grid = head.ln_post(tokens).transpose(1, 2).reshape(2, 8, 4, 6)
        ref = head.conv_out(F.silu(head.norm_out(grid)))
        out = head(x)
    assert out.shape == (2, 4, 4, 6)
    torch.testing.assert_close(out, ref)


def test_feature_head_uses_the_resized_embedding_row_major():
    """The class token keeps its own embedding row; the 4x6 grid tokens get
    the reference-resized rest of the 8x8 embedding."""
    head = FeaturePredictionHead(in_channels=4, width=8, num_layers=1,
                                 num_heads=2, grid_size=8).eval()
    with torch.no_grad():
        head.positional_embedding.copy_(
            3 * torch.randn(65, 8, generator=torch.Generator().manual_seed(3)))
    x = torch.randn(2, 4, 4, 6, generator=torch.Generator().manual_seed(4))
    pos = torch.cat([
        head.positional_embedding[:1],
        reference_resize(head.positional_embedding[1:], 8, 4, 6, 'bicubic')
    ])
    with torch.no_grad():
        tokens = head.proj_in(x.flatten(2).transpose(1, 2))
        cls = head.class_embedding.expand(2, 1, 8)
        tokens = head.ln_pre(torch.cat([cls, tokens], 1) + pos)
        ref = head.ln_post(head.blocks[0](tokens)[:, 0])
        out = head(x)
    assert out.shape == (2, 8)
    torch.testing.assert_close(out, ref)
