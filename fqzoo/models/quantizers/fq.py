"""Factorized quantization (FQGAN: "Factorized Visual Tokenization and
Generation", Bai et al. 2024, arXiv 2411.16681).

``k`` independent sub-codebooks quantize ``k`` channel groups of the latent;
a token is the ``k``-tuple of their indices. Each sub-quantizer is any
registered quantizer (VQ by default, LFQ / FSQ ...), built from one nested
config.
"""
from typing import Dict, List, Optional

import torch
from torch import Tensor, nn

from fqzoo.registry import QUANTIZERS

from .base import (
    BaseQuantizer,
    QuantizerOutput,
    check_sizes,
    merge_metrics,
    sum_losses,
)


@QUANTIZERS.register_module()
class FactorizedQuantizer(BaseQuantizer):
    """``num_codebooks`` independent sub-quantizers over channel groups.

    ``num_branches = k``; ``in_channels = k * sub.in_channels``;
    ``num_codebooks = k * sub.num_codebooks``; indices are the
    sub-quantizers' indices concatenated on dim 1; ``branches`` are the k
    quantized maps. Losses are summed per key; metrics are kept per
    sub-codebook (``usage_0``, ``perplexity_0`` ...) with their means
    (``usage``, ``perplexity``).

    Args:
        num_codebooks (int): number of sub-codebooks k. Defaults to 2.
        quantizer (dict, optional): config of one sub-quantizer. Defaults to
            ``dict(type='VectorQuantizer', codebook_size=16384, embed_dim=8,
            l2_norm=True)`` (the paper's).

    Example:
        >>> fq = FactorizedQuantizer(num_codebooks=3, quantizer=dict(
        ...     type='VectorQuantizer', codebook_size=512, embed_dim=8))
        >>> out = fq(torch.randn(2, 24, 4, 4))
        >>> out.indices.shape, len(out.branches)
        (torch.Size([2, 3, 4, 4]), 3)
    """

    def __init__(self, num_codebooks: int = 2,
                 quantizer: Optional[dict] = None) -> None:
        super().__init__()
        check_sizes(self, num_codebooks=num_codebooks)
        if quantizer is None:
            quantizer = dict(type='VectorQuantizer', codebook_size=16384,
                             embed_dim=8, l2_norm=True)
        self.subs = nn.ModuleList(
            QUANTIZERS.build(dict(quantizer)) for _ in range(num_codebooks))
        first = self.subs[0]
        self.num_branches = num_codebooks
        self.sub_channels = first.in_channels
        self.in_channels = num_codebooks * first.in_channels
        self.num_codebooks = num_codebooks * first.num_codebooks
        self.codebook_size = first.codebook_size
        self.embed_dim = first.embed_dim

    def forward(self, z: Tensor) -> QuantizerOutput:
        outs = [sub(part) for sub, part in
                zip(self.subs, z.split(self.sub_channels, dim=1))]
        branches = [out.quantized for out in outs]
        return QuantizerOutput(
            quantized=torch.cat(branches, dim=1),
            indices=torch.cat([out.indices for out in outs], dim=1),
            losses=sum_losses([out.losses for out in outs]),
            metrics=merge_metrics([out.metrics for out in outs]),
            branches=branches)

    def embed_indices(self, indices: Tensor) -> Tensor:
        groups = indices.split(self.num_codebooks // self.num_branches, dim=1)
        return torch.cat([sub.embed_indices(idx) for sub, idx in
                          zip(self.subs, groups)], dim=1)

    def codebook_stats(self) -> List[Dict[str, Tensor]]:
        return [stats for sub in self.subs for stats in sub.codebook_stats()]

    def restart_dead_codes(self) -> int:
        return sum(sub.restart_dead_codes() for sub in self.subs)
