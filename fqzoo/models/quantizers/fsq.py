"""Finite scalar quantization (FSQ: "Finite Scalar Quantization: VQ-VAE Made
Simple", Mentzer et al. 2023, arXiv 2309.15505).

Each of the ``len(levels)`` channels is bounded with tanh to ``levels[i]``
values and rounded with a straight-through gradient; the implicit codebook
is their product grid (``prod(levels)`` codes) and needs no auxiliary loss.
"""
from typing import Sequence

import torch
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


@QUANTIZERS.register_module()
class FSQ(BaseQuantizer):
    """Bounded per-channel rounding onto a fixed grid.

    Args:
        levels (Sequence[int]): values per channel; ``codebook_size =
            prod(levels)``. Defaults to ``(8, 8, 8, 5, 5, 5)`` (64000 codes,
            one of the paper's settings).
        eps (float): keeps the bound just inside the outer levels (the
            paper's half width ``(L - 1) * (1 - eps) / 2``). Defaults to
            1e-3.
        stats_window (int): steps covered by ``codebook_stats()``. Defaults
            to 100.

    Raises:
        InputError: if ``levels`` is empty or a level is not an integer, or
            a level is below 3: with the paper's bound an even level needs a
            half width above 1/2, so 2 levels have no bound (use
            ``LookupFreeQuantizer`` for one bit per channel).

    Example:
        >>> fsq = FSQ(levels=(8, 5, 5, 5))
        >>> out = fsq(torch.randn(2, 4, 4, 4))
        >>> torch.equal(fsq.embed_indices(out.indices), out.quantized)
        True
    """

    def __init__(self, levels: Sequence[int] = (8, 8, 8, 5, 5, 5), *,
                 eps: float = 1e-3, stats_window: int = 100) -> None:
        super().__init__()
        check_sizes(self, stats_window=stats_window)
        try:
            given = list(levels)
        except TypeError:
            given = []
        if not given:
            raise InputError('FSQ: levels must be a non-empty sequence of '
                             f'integers, got {levels!r}')
        for i, level in enumerate(given):
            check_sizes(self, **{f'levels[{i}]': level})
            if level < 3:
                raise InputError(
                    f'FSQ level {level} in levels={tuple(levels)}: every '
                    'level must be at least 3 (the bound of 2 levels is '
                    'undefined; LookupFreeQuantizer quantizes one bit per '
                    'channel)')
        levels_t = torch.tensor(list(levels), dtype=torch.long)
        self.embed_dim = self.in_channels = len(levels_t)
        self.codebook_size = int(levels_t.prod())
        self.eps = eps
        basis = torch.cumprod(torch.cat([levels_t.new_ones(1), levels_t[:-1]]),
                              dim=0)
        self.register_buffer('levels', levels_t, persistent=False)
        self.register_buffer('basis', basis, persistent=False)
        self.register_buffer('half_width', (levels_t // 2).float(),
                             persistent=False)
        self.usage = CodeUsage(self.codebook_size, stats_window)

    def bound(self, z: Tensor) -> Tensor:
        """Squash ``z [..., D]`` so rounding yields ``levels`` values."""
        half = (self.levels - 1).float() * (1 - self.eps) / 2
        offset = (self.levels % 2 == 0).float() * 0.5
        shift = torch.atanh(offset / half)
        return torch.tanh(z + shift) * half - offset

    def codes_to_indices(self, codes: Tensor) -> Tensor:
        """Normalised codes ``[..., D]`` in [-1, 1] to indices ``[...]``."""
        digits = (codes * self.half_width + self.half_width).round().long()
        return (digits * self.basis).sum(-1)

    def indices_to_codes(self, indices: Tensor) -> Tensor:
        """Indices ``[...]`` to normalised codes ``[..., D]``."""
        digits = (indices.unsqueeze(-1) // self.basis) % self.levels
        return (digits.float() - self.half_width) / self.half_width

    def forward(self, z: Tensor) -> QuantizerOutput:
        b, _, h, w = z.shape
        flat = rearrange(z, 'b c h w -> (b h w) c')
        bounded = self.bound(flat)
        codes = straight_through(bounded, bounded.round()) / self.half_width
        indices = self.codes_to_indices(codes.detach())
        if self.training:
            self.usage.update(global_code_counts(indices, self.codebook_size))
        quantized = rearrange(codes, '(b h w) c -> b c h w', b=b, h=h, w=w)
        indices = rearrange(indices, '(b h w) -> b 1 h w', b=b, h=h, w=w)
        return QuantizerOutput(quantized, indices, {},
                               codebook_metrics(indices, self.codebook_size))

    def embed_indices(self, indices: Tensor) -> Tensor:
        codes = self.indices_to_codes(indices[:, 0])
        return rearrange(codes, 'b h w c -> b c h w')
