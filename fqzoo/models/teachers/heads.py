"""Feature-prediction head of FQGAN's representation-learning objective
(Bai et al., "Factorized Visual Tokenization and Generation", 2024,
arXiv 2411.16681).

The head reads one branch's quantized map, lifts each token to the teacher's
width with a two-layer MLP, prepends a learned class token, adds a learned
positional embedding (trained for a ``grid_size`` x ``grid_size`` grid,
interpolated for others), runs a few pre-norm transformer blocks and returns
the class token after the final LayerNorm: a prediction of the teacher's
global feature. Released models: 3 blocks, 8 heads, width = teacher width
(1024 for CLIP ViT-L/14, 768 for ViT-B/16, 384 for DINOv2-S).
"""
from typing import Optional

import torch
from einops import rearrange
from torch import Tensor, nn

from fqzoo.models.encoders.branch_heads import (
    TransformerBlock,
    check_pos_interpolation,
    resize_pos_embed,
)
from fqzoo.registry import MODELS


@MODELS.register_module()
class FeaturePredictionHead(nn.Module):
    """Quantized map ``[B, in_channels, h, w]`` to a global feature
    ``[B, width]`` (or ``[B, out_channels]``).

    Args:
        in_channels (int): channels of the branch's quantized map (the code
            dim). Defaults to 8.
        width (int): transformer width = teacher feature dim. Defaults to
            1024.
        num_layers (int): transformer blocks. Defaults to 3.
        num_heads (int): attention heads. Defaults to 8.
        mlp_ratio (float): MLP hidden width over ``width``. Defaults to 4.0.
        grid_size (int): side of the token grid the positional embedding is
            trained for. Defaults to 16.
        pos_interpolation (str): 'bicubic' or 'bilinear'. Defaults to
            'bicubic'.
        out_channels (int, optional): if given, a linear layer maps the
            class token to this many channels, so a narrow head can predict
            a wide teacher feature (CPU-scale models). Defaults to None
            (the released heads: output width = transformer width).

    Example:
        >>> head = FeaturePredictionHead(in_channels=8, width=32,
        ...                              num_layers=1, num_heads=2,
        ...                              grid_size=4)
        >>> head(torch.randn(2, 8, 4, 4)).shape
        torch.Size([2, 32])
    """

    def __init__(self, in_channels: int = 8, width: int = 1024,
                 num_layers: int = 3, num_heads: int = 8,
                 mlp_ratio: float = 4.0, grid_size: int = 16,
                 pos_interpolation: str = 'bicubic',
                 out_channels: Optional[int] = None) -> None:
        super().__init__()
        self.width = width
        self.grid_size = grid_size
        self.pos_interpolation = check_pos_interpolation(pos_interpolation)
        self.proj_in = nn.Sequential()
        self.proj_in.add_module('fc1', nn.Linear(in_channels, width))
        self.proj_in.add_module('act', nn.ReLU())
        self.proj_in.add_module('fc2', nn.Linear(width, width))
        scale = width**-0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(1, width))
        self.positional_embedding = nn.Parameter(
            scale * torch.randn(grid_size * grid_size + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.blocks = nn.ModuleList(
            TransformerBlock(width, num_heads, mlp_ratio)
            for _ in range(num_layers))
        self.ln_post = nn.LayerNorm(width)
        self.proj_out = (nn.Linear(width, out_channels)
                         if out_channels is not None else nn.Identity())

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        tokens = self.proj_in(rearrange(x, 'b c h w -> b (h w) c'))
        cls = self.class_embedding.to(tokens.dtype).expand(b, 1, -1)
        pos = torch.cat([
            self.positional_embedding[:1],
            resize_pos_embed(self.positional_embedding[1:], self.grid_size,
                             h, w, self.pos_interpolation)
        ])
        tokens = self.ln_pre(torch.cat([cls, tokens], 1) + pos.to(tokens.dtype))
        for block in self.blocks:
            tokens = block(tokens)
        return self.proj_out(self.ln_post(tokens[:, 0]))
