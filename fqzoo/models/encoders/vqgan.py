"""Convolutional encoder/decoder trunks of VQGAN (Esser et al. 2021) in the
configuration of LlamaGen (Sun et al. 2024): residual blocks, self-attention
at the lowest resolution, downsampling by ``2 ** (len(ch_mult) - 1)``.
"""
import math
from typing import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from fqzoo.registry import MODELS

NORMS = ('group', 'pixel', 'none')


class PixelNorm(nn.GroupNorm):
    """LayerNorm over the channels of each position of ``[B, C, H, W]``
    features (a learned scale and shift per channel, like GroupNorm).

    GroupNorm normalises over the whole image, so its statistics depend on
    the input's size and content: a trunk trained on 32 px crops sees other
    statistics on a 256 px photo and shifts its colours. This norm looks at
    one position at a time, so a trunk built with it (and without attention)
    computes the same features for a pixel whatever surrounds it beyond its
    receptive field.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__(1, channels, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        y = F.layer_norm(x.movedim(1, -1), (self.num_channels, ),
                         self.weight, self.bias, self.eps)
        return y.movedim(-1, 1)


class ChannelAffine(nn.GroupNorm):
    """No normalisation: a learned scale and shift per channel only (the
    ``weight`` and ``bias`` of the other norms, so state dicts keep their
    keys).

    Like :class:`PixelNorm` it is local to each position, but it keeps each
    position's feature scale. A per-position norm divides that scale out at
    every block; in the CPU trunk this pulled saturated colours towards
    grey on unseen photos (a mean-colour shift of 7.7/255 on average over
    three seeds, 5.8 without it, docs/cpu_recipe.md).
    """

    def __init__(self, channels: int) -> None:
        super().__init__(1, channels)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.weight[:, None, None] + self.bias[:, None, None]


def group_norm(channels: int, num_groups: int = 32,
               norm: str = 'group') -> nn.GroupNorm:
    """The trunk's norm layer: GroupNorm (``'group'``, groups reduced to
    divide tiny channel counts of CPU tests), :class:`PixelNorm`
    (``'pixel'``) or :class:`ChannelAffine` (``'none'``). All hold
    ``weight`` and ``bias`` of ``channels``."""
    if norm == 'pixel':
        return PixelNorm(channels)
    if norm == 'none':
        return ChannelAffine(channels)
    if norm != 'group':
        raise ValueError(f'norm must be one of {NORMS}, got {norm!r}')
    return nn.GroupNorm(math.gcd(num_groups, channels), channels, eps=1e-6)


class ResnetBlock(nn.Module):

    def __init__(self, in_channels: int, out_channels: int,
                 dropout: float = 0.0, num_groups: int = 32,
                 norm: str = 'group') -> None:
        super().__init__()
        self.norm1 = group_norm(in_channels, num_groups, norm)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = group_norm(out_channels, num_groups, norm)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.nin_shortcut = (nn.Conv2d(in_channels, out_channels, 1)
                             if in_channels != out_channels else nn.Identity())

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.nin_shortcut(x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all spatial positions."""

    def __init__(self, channels: int, num_groups: int = 32,
                 norm: str = 'group') -> None:
        super().__init__()
        self.norm = group_norm(channels, num_groups, norm)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        y = self.norm(x)
        q, k, v = (m(y).flatten(2).transpose(1, 2)[:, None]
                   for m in (self.q, self.k, self.v))
        y = F.scaled_dot_product_attention(q, k, v)[:, 0]
        return x + self.proj_out(y.transpose(1, 2).reshape(b, c, h, w))


class Downsample(nn.Module):

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode='nearest'))


def mid_block(channels: int, dropout: float, num_groups: int,
              norm: str = 'group', attention: bool = True) -> nn.ModuleList:
    """Residual block, attention (an identity without ``attention``, so the
    keys stay ``mid.0`` and ``mid.2``), residual block."""
    return nn.ModuleList([
        ResnetBlock(channels, channels, dropout, num_groups, norm),
        AttnBlock(channels, num_groups, norm) if attention else nn.Identity(),
        ResnetBlock(channels, channels, dropout, num_groups, norm),
    ])


@MODELS.register_module()
class VQGANEncoder(nn.Module):
    """Image ``[B, in_channels, H, W]`` to features ``[B, z_channels, H/f, W/f]``
    with ``f = 2 ** (len(ch_mult) - 1)``.

    Args:
        in_channels (int): image channels. Defaults to 3.
        ch (int): base width. Defaults to 128 (paper scale).
        ch_mult (Sequence[int]): width multiplier per resolution level.
            Defaults to (1, 1, 2, 2, 4) (downsample 16).
        num_res_blocks (int): residual blocks per level. Defaults to 2.
        z_channels (int): output channels. Defaults to 256.
        dropout (float): dropout in residual blocks. Defaults to 0.0.
        num_groups (int): GroupNorm groups. Defaults to 32.
        norm (str): ``'group'`` (GroupNorm, VQGAN's), ``'pixel'``
            (:class:`PixelNorm`, per-position) or ``'none'``
            (:class:`ChannelAffine`, no normalisation). With the last two
            and ``attention=False`` the trunk no longer depends on the
            input's size (docs/cpu_recipe.md). Defaults to 'group'.
        attention (bool): self-attention at the lowest resolution.
            Defaults to True.
        out_conv (bool): end with norm, SiLU and a 3x3 conv to
            ``z_channels``. Without it the output is the middle block's,
            ``ch * ch_mult[-1]`` channels (FQGAN's shared trunk, whose branch
            heads end in their own conv). Defaults to True.

    Example:
        >>> enc = VQGANEncoder(ch=8, ch_mult=(1, 2), num_res_blocks=1,
        ...                    z_channels=4)
        >>> enc(torch.randn(1, 3, 32, 32)).shape
        torch.Size([1, 4, 16, 16])
    """

    def __init__(self, in_channels: int = 3, ch: int = 128,
                 ch_mult: Sequence[int] = (1, 1, 2, 2, 4),
                 num_res_blocks: int = 2, z_channels: int = 256,
                 dropout: float = 0.0, num_groups: int = 32,
                 norm: str = 'group', attention: bool = True,
                 out_conv: bool = True) -> None:
        super().__init__()
        self.downsample_factor = 2 ** (len(ch_mult) - 1)
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        self.conv_blocks = nn.ModuleList()
        in_mult = (1, ) + tuple(ch_mult)
        block_in = ch
        for level, mult in enumerate(ch_mult):
            block = nn.Module()
            block_in = ch * in_mult[level]
            block_out = ch * mult
            block.res = nn.ModuleList()
            block.attn = nn.ModuleList()
            for _ in range(num_res_blocks):
                block.res.append(ResnetBlock(block_in, block_out, dropout,
                                             num_groups, norm))
                block_in = block_out
                if attention and level == len(ch_mult) - 1:
                    block.attn.append(AttnBlock(block_in, num_groups, norm))
            if level != len(ch_mult) - 1:
                block.downsample = Downsample(block_in)
            self.conv_blocks.append(block)
        self.mid = mid_block(block_in, dropout, num_groups, norm, attention)
        self.z_channels = z_channels if out_conv else block_in
        if out_conv:
            self.norm_out = group_norm(block_in, num_groups, norm)
            self.conv_out = nn.Conv2d(block_in, z_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv_in(x)
        for block in self.conv_blocks:
            for i, res in enumerate(block.res):
                h = res(h)
                if len(block.attn) > 0:
                    h = block.attn[i](h)
            if hasattr(block, 'downsample'):
                h = block.downsample(h)
        for layer in self.mid:
            h = layer(h)
        if hasattr(self, 'conv_out'):
            h = self.conv_out(F.silu(self.norm_out(h)))
        return h
