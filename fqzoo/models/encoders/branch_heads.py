"""Branch heads of factorized tokenizers and the conv trunk that feeds them.

FQGAN (Bai et al., "Factorized Visual Tokenization and Generation", 2024,
arXiv 2411.16681) shares the VQGAN encoder trunk (conv blocks and middle
block, no output conv) between k branches; each branch has its own
*factorized adapter* (a pre-norm transformer over the ``h*w`` feature grid,
width 512, 6 layers, 8 heads, learned positional embedding for the 16x16 grid
of 256px images at downsample 16) followed by GroupNorm, SiLU and a 3x3 conv
to ``z_channels``. In fqzoo that tail belongs to the head, so a head maps
trunk features ``[B, in_channels, h, w]`` to ``[B, out_channels, h, w]`` and
exposes ``out_channels`` (the tokenizer's per-branch 1x1 ``quant_conv`` reads
it).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from fqzoo.registry import MODELS

from .vqgan import ResnetBlock, VQGANEncoder, group_norm


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then
    ``x + mlp(norm2(x))`` with a GELU MLP. Tokens are ``[B, L, C]``.

    Args:
        width (int): token channels.
        num_heads (int): attention heads.
        mlp_ratio (float): MLP hidden width over ``width``. Defaults to 4.0.
    """

    def __init__(self, width: int, num_heads: int,
                 mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, num_heads, batch_first=True)
        self.norm2 = nn.LayerNorm(width)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential()
        self.mlp.add_module('fc1', nn.Linear(width, hidden))
        self.mlp.add_module('act', nn.GELU())
        self.mlp.add_module('fc2', nn.Linear(hidden, width))

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


def check_pos_interpolation(mode: str) -> str:
    """``mode``, refused unless ``'bicubic'`` or ``'bilinear'`` (the
    modes a positional embedding is resized with)."""
    if mode not in ('bicubic', 'bilinear'):
        raise ValueError('pos_interpolation must be "bicubic" or '
                         f'"bilinear", got "{mode}"')
    return mode


def resize_pos_embed(pos_embed: Tensor, grid_size: int, height: int,
                     width: int, mode: str = 'bicubic') -> Tensor:
    """Resample a ``[grid_size**2, C]`` positional embedding to
    ``[height*width, C]`` (identity when the grid already matches)."""
    if height == width == grid_size:
        return pos_embed
    grid = rearrange(pos_embed, '(h w) c -> 1 c h w', h=grid_size)
    grid = F.interpolate(grid, size=(height, width), mode=mode,
                         align_corners=False)
    return rearrange(grid, '1 c h w -> (h w) c')


@MODELS.register_module()
class TransformerBranchHead(nn.Module):
    """FQGAN's factorized adapter plus the branch's output conv.

    Tokens of the ``h*w`` grid (a linear ``proj_in`` only when ``width``
    differs from ``in_channels``; the released models have none) get a learned
    positional embedding, LayerNorm, ``num_layers`` transformer blocks and a
    final LayerNorm; the map is then GroupNorm-ed, passed through SiLU and a
    3x3 conv to ``out_channels``. The positional embedding is trained for a
    ``grid_size`` x ``grid_size`` grid and interpolated for other grids, so a
    model trained at 256px runs at 512px too.

    Args:
        in_channels (int): trunk channels. Defaults to 512.
        out_channels (int): output channels (``z_channels``). Defaults to 256.
        width (int, optional): transformer width. Defaults to
            ``in_channels``.
        num_layers (int): transformer blocks. Defaults to 6.
        num_heads (int): attention heads. Defaults to 8.
        mlp_ratio (float): MLP hidden width over ``width``. Defaults to 4.0.
        grid_size (int): side of the grid the positional embedding is
            trained for (image size / downsample). Defaults to 16.
        pos_interpolation (str): 'bicubic' or 'bilinear'. Defaults to
            'bicubic'.
        num_groups (int): GroupNorm groups of the output norm. Defaults to 32.

    Example:
        >>> head = TransformerBranchHead(in_channels=32, out_channels=16,
        ...                              num_layers=1, num_heads=2,
        ...                              grid_size=4)
        >>> head(torch.randn(2, 32, 8, 8)).shape
        torch.Size([2, 16, 8, 8])
    """

    def __init__(self, in_channels: int = 512, out_channels: int = 256,
                 width: Optional[int] = None, num_layers: int = 6,
                 num_heads: int = 8, mlp_ratio: float = 4.0,
                 grid_size: int = 16, pos_interpolation: str = 'bicubic',
                 num_groups: int = 32) -> None:
        super().__init__()
        width = width or in_channels
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.grid_size = grid_size
        self.pos_interpolation = check_pos_interpolation(pos_interpolation)
        self.proj_in = (nn.Linear(in_channels, width)
                        if width != in_channels else nn.Identity())
        self.positional_embedding = nn.Parameter(
            width**-0.5 * torch.randn(grid_size * grid_size, width))
        self.ln_pre = nn.LayerNorm(width)
        self.blocks = nn.ModuleList(
            TransformerBlock(width, num_heads, mlp_ratio)
            for _ in range(num_layers))
        self.ln_post = nn.LayerNorm(width)
        self.norm_out = group_norm(width, num_groups)
        self.conv_out = nn.Conv2d(width, out_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, in_channels, h, w]`` to ``[B, out_channels, h, w]``."""
        _, _, h, w = x.shape
        tokens = self.proj_in(rearrange(x, 'b c h w -> b (h w) c'))
        pos = resize_pos_embed(self.positional_embedding, self.grid_size, h,
                               w, self.pos_interpolation)
        tokens = self.ln_pre(tokens + pos.to(tokens.dtype))
        for block in self.blocks:
            tokens = block(tokens)
        x = rearrange(self.ln_post(tokens), 'b (h w) c -> b c h w', h=h)
        return self.conv_out(F.silu(self.norm_out(x)))


@MODELS.register_module()
class ConvBranchHead(nn.Module):
    """A conv-only branch head for CPU-scale models: residual blocks, then
    GroupNorm, SiLU and a 3x3 conv to ``out_channels``.

    Args:
        in_channels (int): trunk channels.
        out_channels (int, optional): output channels. Defaults to
            ``in_channels``.
        num_blocks (int): residual blocks. Defaults to 1.
        num_groups (int): GroupNorm groups. Defaults to 32.
        norm (str): ``'group'``, ``'pixel'`` or ``'none'``, as in
            :class:`~fqzoo.models.VQGANEncoder`. Defaults to 'group'.

    Example:
        >>> head = ConvBranchHead(in_channels=16, out_channels=8)
        >>> head(torch.randn(2, 16, 4, 4)).shape
        torch.Size([2, 8, 4, 4])
    """

    def __init__(self, in_channels: int, out_channels: Optional[int] = None,
                 num_blocks: int = 1, num_groups: int = 32,
                 norm: str = 'group') -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels or in_channels
        self.blocks = nn.Sequential(*(
            ResnetBlock(in_channels, in_channels, num_groups=num_groups,
                        norm=norm) for _ in range(num_blocks)))
        self.norm_out = group_norm(in_channels, num_groups, norm)
        self.conv_out = nn.Conv2d(in_channels, self.out_channels, 3,
                                  padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, in_channels, h, w]`` to ``[B, out_channels, h, w]``."""
        return self.conv_out(F.silu(self.norm_out(self.blocks(x))))


@MODELS.register_module()
class VQGANTrunk(VQGANEncoder):
    """The VQGAN encoder without its output norm and conv: the shared trunk
    of FQGAN, whose branch heads end in their own norm and conv.

    Takes :class:`VQGANEncoder`'s arguments except ``z_channels``; its
    output has ``z_channels = ch * ch_mult[-1]`` channels (512 at paper
    scale), the width the adapters run at.

    Example:
        >>> trunk = VQGANTrunk(ch=8, ch_mult=(1, 2), num_res_blocks=1)
        >>> trunk(torch.randn(1, 3, 32, 32)).shape
        torch.Size([1, 16, 16, 16])
    """

    def __init__(self, **kwargs) -> None:
        if 'z_channels' in kwargs:
            raise TypeError('VQGANTrunk has no z_channels: its output has '
                            'ch * ch_mult[-1] channels')
        super().__init__(out_conv=False, **kwargs)
