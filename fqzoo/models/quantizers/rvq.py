"""Residual vector quantization (SoundStream, Zeghidour et al. 2021,
arXiv 2107.03312; RQ-VAE, Lee et al. 2022, arXiv 2203.01941).

``depth`` quantizers in sequence, each quantizing what the previous ones
left over; the quantized latent is the sum of the levels' codes and a token
is the ``depth``-tuple of their indices (coarse to fine).
"""
from typing import Dict, List, Optional

import torch
from torch import Tensor, nn

from fqzoo.errors import InputError
from fqzoo.registry import QUANTIZERS

from .base import (
    BaseQuantizer,
    QuantizerOutput,
    check_sizes,
    merge_metrics,
    pass_gradient,
    sum_losses,
)


@QUANTIZERS.register_module()
class ResidualVQ(BaseQuantizer):
    """``depth`` levels of residual quantization, indices ``[B, d, H, W]``.

    Use sub-quantizers without l2 normalisation: a normalised lookup cannot
    represent shrinking residuals.

    Args:
        depth (int): number of levels d. Defaults to 4.
        quantizer (dict, optional): config of one level. Defaults to
            ``dict(type='VectorQuantizer', codebook_size=1024, embed_dim=8,
            l2_norm=False)``.
        shared_codebook (bool): all levels use one quantizer (and so one
            codebook; its usage statistics then count every level's
            lookups). Defaults to False.
        rotation_trick (bool): pass the gradient to ``z`` by the rotation
            trick (arXiv 2410.06424) that maps ``z`` onto the sum of the
            levels' codes, instead of the straight-through copy. The levels'
            own outputs carry no gradient here (each level's input is the
            detached residual), so a level config asking for the rotation
            trick is refused: set it here. vector-quantize-pytorch's
            ``ResidualVQ`` instead sums every level's straight-through (or
            rotated) output, ``depth`` times the gradient of one level at
            the identity. Defaults to False.

    Example:
        >>> rvq = ResidualVQ(depth=3, quantizer=dict(
        ...     type='VectorQuantizer', codebook_size=256, embed_dim=8,
        ...     l2_norm=False))
        >>> rvq(torch.randn(2, 8, 4, 4)).indices.shape
        torch.Size([2, 3, 4, 4])
    """

    def __init__(self, depth: int = 4, quantizer: Optional[dict] = None,
                 shared_codebook: bool = False,
                 rotation_trick: bool = False) -> None:
        super().__init__()
        check_sizes(self, depth=depth)
        if quantizer is None:
            quantizer = dict(type='VectorQuantizer', codebook_size=1024,
                             embed_dim=8, l2_norm=False)
        if quantizer.get('rotation_trick'):
            raise InputError(
                'ResidualVQ: the level config sets rotation_trick=True, but '
                "a level's output carries no gradient in ResidualVQ; set "
                'ResidualVQ(rotation_trick=True) instead')
        self.rotation_trick = rotation_trick
        self.depth = depth
        self.shared_codebook = shared_codebook
        self.codebooks = nn.ModuleList(
            QUANTIZERS.build(dict(quantizer))
            for _ in range(1 if shared_codebook else depth))
        first = self.codebooks[0]
        self.in_channels = first.in_channels
        self.embed_dim = first.embed_dim
        self.codebook_size = first.codebook_size
        self.num_codebooks = depth * first.num_codebooks

    def levels(self) -> List[BaseQuantizer]:
        """The quantizer of each level, coarse to fine."""
        if self.shared_codebook:
            return [self.codebooks[0]] * self.depth
        return list(self.codebooks)

    def forward(self, z: Tensor) -> QuantizerOutput:
        residual, total, outs = z, 0, []
        for level in self.levels():
            out = level(residual)
            code = out.quantized.detach()
            residual = residual - code
            total = total + code
            outs.append(out)
        return QuantizerOutput(
            quantized=self._pass_gradient(z, total),
            indices=torch.cat([out.indices for out in outs], dim=1),
            losses=sum_losses([out.losses for out in outs]),
            metrics=merge_metrics([out.metrics for out in outs]))

    def _pass_gradient(self, z: Tensor, total: Tensor) -> Tensor:
        """Per position, over channels (dim 1)."""
        return pass_gradient(z.movedim(1, -1), total.movedim(1, -1),
                             self.rotation_trick).movedim(-1, 1)

    def embed_indices(self, indices: Tensor) -> Tensor:
        total = 0
        per_level = indices.split(self.num_codebooks // self.depth, dim=1)
        for level, idx in zip(self.levels(), per_level):
            total = total + level.embed_indices(idx)
        return total

    def codebook_stats(self) -> List[Dict[str, Tensor]]:
        return [stats for quantizer in self.codebooks
                for stats in quantizer.codebook_stats()]

    def restart_dead_codes(self) -> int:
        return sum(quantizer.restart_dead_codes()
                   for quantizer in self.codebooks)
