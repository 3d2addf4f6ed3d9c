"""Binary spherical quantization (BSQ: "Image and Video Tokenization with
Binary Spherical Quantization", Zhao, Xiong and Krähenbühl 2024,
arXiv 2406.07548).

The latent is projected onto the unit sphere and each channel quantized to
its sign, scaled by ``1/sqrt(D)`` so codes stay on the sphere; the implicit
codebook has ``2^D`` codes. The entropy penalty factorises over channels:
the per-sample entropy exactly, the codebook entropy as the paper's
per-channel approximation, so its cost is ``O(D)`` per token at any size.
"""
import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from fqzoo.registry import QUANTIZERS

from .base import (
    BaseQuantizer,
    CodeUsage,
    QuantizerOutput,
    check_sizes,
    codebook_metrics,
    global_code_counts,
    straight_through,
)
from .lfq import bits_to_indices, indices_to_bits


def binary_entropy(logits: Tensor) -> Tensor:
    """Entropy of Bernoulli(sigmoid(logits)), elementwise, in nats."""
    p = torch.sigmoid(logits)
    return -(p * F.logsigmoid(logits) + (1 - p) * F.logsigmoid(-logits))


def factorized_entropy_loss(u: Tensor, scale: float, temperature: float,
                            codebook_weight: float = 1.0) -> Tensor:
    """Per-sample minus codebook entropy of the soft assignment
    ``p(c | u) ~ exp(<c, u> / T)`` over ``c in {-scale, scale}^D``.

    Args:
        u (Tensor): ``[N, D]`` unit vectors.
        scale (float): code magnitude per channel.
        temperature (float): softmax temperature T.
        codebook_weight (float): weight of the codebook entropy. Defaults to
            1.0.

    Returns:
        Tensor: scalar loss.
    """
    logits = 2 * scale * u / temperature
    sample_entropy = binary_entropy(logits).sum(-1).mean()
    avg = torch.sigmoid(logits).mean(0).clamp(1e-6, 1 - 1e-6)
    codebook_entropy = binary_entropy(torch.logit(avg)).sum()
    return sample_entropy - codebook_weight * codebook_entropy


@QUANTIZERS.register_module()
class BSQ(BaseQuantizer):
    """Sign quantization on the unit sphere with an implicit ``2^D``
    codebook.

    Args:
        embed_dim (int): bits D (channels of ``z``); ``codebook_size = 2^D``.
            Defaults to 18.
        beta (float): commitment loss weight. Defaults to 0.25.
        entropy_weight (float): weight of the entropy penalty; 0 disables
            it. Defaults to 0.1.
        entropy_temperature (float): softmax temperature. Defaults to 0.01.
        diversity_weight (float): weight of the codebook entropy inside the
            penalty. Defaults to 1.0.
        stats_window (int): steps covered by ``codebook_stats()``. Defaults
            to 100.

    Example:
        >>> bsq = BSQ(embed_dim=10)
        >>> bsq(torch.randn(2, 10, 4, 4)).quantized.norm(dim=1).allclose(
        ...     torch.ones(2, 4, 4))
        True
    """

    def __init__(self, embed_dim: int = 18, *, beta: float = 0.25,
                 entropy_weight: float = 0.1,
                 entropy_temperature: float = 0.01,
                 diversity_weight: float = 1.0,
                 stats_window: int = 100) -> None:
        super().__init__()
        check_sizes(self, embed_dim=embed_dim, stats_window=stats_window)
        self.embed_dim = self.in_channels = embed_dim
        self.codebook_size = 2 ** embed_dim
        self.scale = 1 / math.sqrt(embed_dim)
        self.beta = beta
        self.entropy_weight = entropy_weight
        self.entropy_temperature = entropy_temperature
        self.diversity_weight = diversity_weight
        self.usage = CodeUsage(self.codebook_size, stats_window)

    def forward(self, z: Tensor) -> QuantizerOutput:
        b, _, h, w = z.shape
        u = F.normalize(rearrange(z, 'b c h w -> (b h w) c'), dim=-1)
        bits = u > 0
        codes = torch.where(bits, self.scale, -self.scale).to(u)
        indices = bits_to_indices(bits)
        losses = {}
        if self.training:
            losses['loss_commit'] = self.beta * F.mse_loss(u, codes)
            if self.entropy_weight > 0:
                losses['loss_entropy'] = (
                    self.entropy_weight * factorized_entropy_loss(
                        u, self.scale, self.entropy_temperature,
                        self.diversity_weight))
            self.usage.update(global_code_counts(indices, self.codebook_size))
        z_q = straight_through(u, codes)
        quantized = rearrange(z_q, '(b h w) c -> b c h w', b=b, h=h, w=w)
        indices = rearrange(indices, '(b h w) -> b 1 h w', b=b, h=h, w=w)
        return QuantizerOutput(quantized, indices, losses,
                               codebook_metrics(indices, self.codebook_size))

    def embed_indices(self, indices: Tensor) -> Tensor:
        bits = indices_to_bits(indices[:, 0], self.embed_dim)
        codes = torch.where(bits, self.scale, -self.scale)
        return rearrange(codes, 'b h w c -> b c h w')
