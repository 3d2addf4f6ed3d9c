"""Vector quantization (VQ-VAE, van den Oord et al. 2017; VQGAN, Esser et al.
2021) with the l2-normalised low-dimensional codebook of ViT-VQGAN / LlamaGen.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from fqzoo.registry import QUANTIZERS

from .base import BaseQuantizer, QuantizerOutput, codebook_metrics
from .search import entropy_loss, nearest_code


@QUANTIZERS.register_module()
class VectorQuantizer(BaseQuantizer):
    """One codebook, nearest-neighbour lookup, straight-through gradient.

    Args:
        codebook_size (int): number of codes K.
        embed_dim (int): code dimension D (channels of ``z``).
        l2_norm (bool): l2-normalise ``z`` and the codes before the lookup
            (cosine-similarity search). Defaults to True.
        beta (float): commitment loss weight. Defaults to 0.25.
        entropy_weight (float): weight of the entropy loss; 0 disables it.
            Defaults to 0.0.
        entropy_temperature (float): softmax temperature of the entropy
            loss. Defaults to 0.01.

    Example:
        >>> vq = VectorQuantizer(codebook_size=512, embed_dim=8)
        >>> out = vq(torch.randn(2, 8, 4, 4))
        >>> out.indices.shape
        torch.Size([2, 1, 4, 4])
    """

    def __init__(self, codebook_size: int, embed_dim: int, *,
                 l2_norm: bool = True, beta: float = 0.25,
                 entropy_weight: float = 0.0,
                 entropy_temperature: float = 0.01,
                 init_range: Optional[float] = None) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.embed_dim = self.in_channels = embed_dim
        self.l2_norm = l2_norm
        self.beta = beta
        self.entropy_weight = entropy_weight
        self.entropy_temperature = entropy_temperature
        self.embedding = nn.Embedding(codebook_size, embed_dim)
        bound = init_range if init_range is not None else 1.0 / codebook_size
        nn.init.uniform_(self.embedding.weight, -bound, bound)
        if l2_norm:
            with torch.no_grad():
                self.embedding.weight.copy_(
                    F.normalize(self.embedding.weight, dim=-1))

    def codebook(self) -> Tensor:
        weight = self.embedding.weight
        return F.normalize(weight, dim=-1) if self.l2_norm else weight

    def forward(self, z: Tensor) -> QuantizerOutput:
        b, _, h, w = z.shape
        flat = rearrange(z, 'b c h w -> (b h w) c')
        if self.l2_norm:
            flat = F.normalize(flat, dim=-1)
        codebook = self.codebook()
        indices = nearest_code(flat.detach(), codebook.detach())
        z_q = codebook[indices]
        losses = {}
        if self.training:
            losses['loss_codebook'] = F.mse_loss(z_q, flat.detach())
            losses['loss_commit'] = self.beta * F.mse_loss(flat, z_q.detach())
            if self.entropy_weight > 0:
                losses['loss_entropy'] = self.entropy_weight * entropy_loss(
                    flat, codebook, self.entropy_temperature, self.l2_norm)
        z_q = flat + (z_q - flat).detach()
        quantized = rearrange(z_q, '(b h w) c -> b c h w', b=b, h=h, w=w)
        indices = indices.view(b, 1, h, w)
        return QuantizerOutput(quantized, indices, losses,
                               codebook_metrics(indices, self.codebook_size))

    def embed_indices(self, indices: Tensor) -> Tensor:
        codes = self.codebook()[indices[:, 0]]
        return rearrange(codes, 'b h w c -> b c h w')
