"""VQGAN / LlamaGen convolutional pixel decoder (mirror of the encoder)."""
from typing import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from fqzoo.models.encoders.vqgan import (
    AttnBlock,
    ResnetBlock,
    Upsample,
    group_norm,
    mid_block,
)
from fqzoo.registry import MODELS


@MODELS.register_module()
class VQGANDecoder(nn.Module):
    """Features ``[B, z_channels, h, w]`` to an image ``[B, out_channels,
    h*f, w*f]``, ``f = 2 ** (len(ch_mult) - 1)``.

    Args are those of :class:`VQGANEncoder`; each level has
    ``num_res_blocks + 1`` residual blocks and attention sits at the lowest
    resolution.

    Example:
        >>> dec = VQGANDecoder(ch=8, ch_mult=(1, 2), num_res_blocks=1,
        ...                    z_channels=4)
        >>> dec(torch.randn(1, 4, 16, 16)).shape
        torch.Size([1, 3, 32, 32])
    """

    def __init__(self, out_channels: int = 3, ch: int = 128,
                 ch_mult: Sequence[int] = (1, 1, 2, 2, 4),
                 num_res_blocks: int = 2, z_channels: int = 256,
                 dropout: float = 0.0, num_groups: int = 32,
                 norm: str = 'group', attention: bool = True) -> None:
        super().__init__()
        self.z_channels = z_channels
        block_in = ch * ch_mult[-1]
        self.conv_in = nn.Conv2d(z_channels, block_in, 3, padding=1)
        self.mid = mid_block(block_in, dropout, num_groups, norm, attention)
        self.conv_blocks = nn.ModuleList()
        for level, mult in enumerate(reversed(ch_mult)):
            block = nn.Module()
            block_out = ch * mult
            block.res = nn.ModuleList()
            block.attn = nn.ModuleList()
            for _ in range(num_res_blocks + 1):
                block.res.append(ResnetBlock(block_in, block_out, dropout,
                                             num_groups, norm))
                block_in = block_out
                if attention and level == 0:
                    block.attn.append(AttnBlock(block_in, num_groups, norm))
            if level != len(ch_mult) - 1:
                block.upsample = Upsample(block_in)
            self.conv_blocks.append(block)
        self.norm_out = group_norm(block_in, num_groups, norm)
        self.conv_out = nn.Conv2d(block_in, out_channels, 3, padding=1)

    @property
    def last_layer(self) -> nn.Parameter:
        """Weight the adaptive GAN weight balances gradients at."""
        return self.conv_out.weight

    def forward(self, z: Tensor) -> Tensor:
        h = self.conv_in(z)
        for layer in self.mid:
            h = layer(h)
        for block in self.conv_blocks:
            for i, res in enumerate(block.res):
                h = res(h)
                if len(block.attn) > 0:
                    h = block.attn[i](h)
            if hasattr(block, 'upsample'):
                h = block.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))
