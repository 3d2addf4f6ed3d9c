"""Lookup-free quantization (MAGVIT-v2: "Language Model Beats Diffusion --
Tokenizer is Key to Visual Generation", Yu et al. 2023, arXiv 2310.05737).

Each of the D latent channels is quantized to its sign, so the implicit
codebook is ``{-s, s}^D`` with ``2^D`` codes and the index is the bit
pattern. The entropy penalty (per-sample entropy minus codebook entropy of
the soft assignments) keeps tokens confident and the codebook in use; as in
Open-MAGVIT2 the D bits can be split into groups whose entropies are summed,
so a ``2^18`` codebook costs two ``2^9`` softmaxes.
"""
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from fqzoo.errors import InputError
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
from .search import entropy_loss


def bits_to_indices(bits: Tensor) -> Tensor:
    """``[..., D]`` bools (most significant first) to ``[...]`` indices."""
    dim = bits.shape[-1]
    weights = 2 ** torch.arange(dim - 1, -1, -1, device=bits.device)
    return (bits.long() * weights).sum(-1)


def indices_to_bits(indices: Tensor, dim: int) -> Tensor:
    """``[...]`` indices to ``[..., D]`` bools (most significant first)."""
    shifts = torch.arange(dim - 1, -1, -1, device=indices.device)
    return (indices.unsqueeze(-1) >> shifts) & 1 == 1


def sign_codebook(dim: int, scale: float = 1.0) -> Tensor:
    """All ``2^dim`` codes ``{-scale, scale}^dim`` in index order."""
    bits = indices_to_bits(torch.arange(2 ** dim), dim)
    return torch.where(bits, scale, -scale)


@QUANTIZERS.register_module()
class LookupFreeQuantizer(BaseQuantizer):
    """Sign quantization with an implicit ``2^D`` codebook.

    Args:
        embed_dim (int): bits D (channels of ``z``); ``codebook_size = 2^D``.
            Defaults to 18.
        scale (float): code magnitude. Defaults to 1.0.
        beta (float): commitment loss weight. Defaults to 0.25.
        entropy_weight (float): weight of the entropy penalty; 0 disables
            it. Defaults to 0.1.
        entropy_temperature (float): softmax temperature. Defaults to 0.01.
        diversity_weight (float): weight of the codebook entropy inside the
            penalty (MAGVIT-v2's gamma). Defaults to 1.0.
        entropy_groups (int): the bits are split into this many groups whose
            entropies are summed (exact for the per-sample term, a
            factorised approximation of the codebook term). Defaults to 2.
        stats_window (int): steps covered by ``codebook_stats()``. Defaults
            to 100.

    Example:
        >>> lfq = LookupFreeQuantizer(embed_dim=10, entropy_groups=1)
        >>> lfq(torch.randn(2, 10, 4, 4)).indices.max() < 2 ** 10
        tensor(True)
    """

    def __init__(self, embed_dim: int = 18, *, scale: float = 1.0,
                 beta: float = 0.25, entropy_weight: float = 0.1,
                 entropy_temperature: float = 0.01,
                 diversity_weight: float = 1.0, entropy_groups: int = 2,
                 stats_window: int = 100) -> None:
        super().__init__()
        check_sizes(self, embed_dim=embed_dim, entropy_groups=entropy_groups,
                    stats_window=stats_window)
        if embed_dim % entropy_groups:
            raise InputError(f'LookupFreeQuantizer: embed_dim {embed_dim} is '
                             'not divisible by entropy_groups '
                             f'{entropy_groups}')
        self.embed_dim = self.in_channels = embed_dim
        self.codebook_size = 2 ** embed_dim
        self.scale = scale
        self.beta = beta
        self.entropy_weight = entropy_weight
        self.entropy_temperature = entropy_temperature
        self.diversity_weight = diversity_weight
        self.entropy_groups = entropy_groups
        self.register_buffer(
            'group_codebook',
            sign_codebook(embed_dim // entropy_groups, scale), persistent=False)
        self.usage = CodeUsage(self.codebook_size, stats_window)

    def forward(self, z: Tensor) -> QuantizerOutput:
        b, _, h, w = z.shape
        flat = rearrange(z, 'b c h w -> (b h w) c')
        bits = flat > 0
        codes = torch.where(bits, self.scale, -self.scale).to(flat)
        indices = bits_to_indices(bits)
        losses = {}
        if self.training:
            losses['loss_commit'] = self.beta * F.mse_loss(flat, codes)
            if self.entropy_weight > 0:
                losses['loss_entropy'] = self.entropy_weight * self._entropy(
                    flat)
            self.usage.update(global_code_counts(indices, self.codebook_size))
        z_q = straight_through(flat, codes)
        quantized = rearrange(z_q, '(b h w) c -> b c h w', b=b, h=h, w=w)
        indices = rearrange(indices, '(b h w) -> b 1 h w', b=b, h=h, w=w)
        return QuantizerOutput(quantized, indices, losses,
                               codebook_metrics(indices, self.codebook_size))

    def _entropy(self, flat: Tensor) -> Tensor:
        groups = rearrange(flat, 'n (g d) -> g n d', g=self.entropy_groups)
        return sum(entropy_loss(group, self.group_codebook.to(flat),
                                self.entropy_temperature,
                                codebook_weight=self.diversity_weight)
                   for group in groups)

    def embed_indices(self, indices: Tensor) -> Tensor:
        bits = indices_to_bits(indices[:, 0], self.embed_dim)
        codes = torch.where(bits, self.scale, -self.scale)
        return rearrange(codes, 'b h w c -> b c h w')
