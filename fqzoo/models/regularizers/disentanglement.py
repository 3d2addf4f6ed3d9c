"""Disentanglement regularization of FQGAN (Bai et al., "Factorized Visual
Tokenization and Generation", 2024, arXiv 2411.16681, Eq. 4).

For every pair of branches (i, j): the mean over positions of the squared
cosine similarity of the quantized vectors (channels at one position),
averaged over the pairs and weighted (paper: 0.1). It pushes the
sub-codebooks towards complementary, orthogonal content.
"""
from itertools import combinations
from typing import Dict, Optional, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from fqzoo.models.quantizers.base import QuantizerOutput
from fqzoo.registry import REGULARIZERS


def squared_cosine(a: Tensor, b: Tensor) -> Tensor:
    """Mean over batch and positions of ``cos(a, b)^2`` along channels.

    Args:
        a (Tensor): ``[B, C, H, W]``.
        b (Tensor): ``[B, C, H, W]``.

    Returns:
        Tensor: a scalar in [0, 1].
    """
    cos = (F.normalize(a, dim=1) * F.normalize(b, dim=1)).sum(1)
    return cos.pow(2).mean()


@REGULARIZERS.register_module()
class DisentanglementRegularizer(nn.Module):
    """``weight * mean_{i<j} mean_pos cos(q_i, q_j)^2`` over branches.

    Args:
        weight (float): loss weight. Defaults to 0.1.
        branches (Sequence[int], optional): branches to decorrelate.
            Defaults to all of ``QuantizerOutput.branches``.

    Example:
        >>> reg = DisentanglementRegularizer()
        >>> q = QuantizerOutput(torch.zeros(1, 4, 2, 2),
        ...                     torch.zeros(1, 2, 2, 2, dtype=torch.long),
        ...                     branches=[torch.ones(1, 2, 2, 2)] * 2)
        >>> reg(q, None)['loss_disentangle']
        tensor(0.1000)
    """

    def __init__(self, weight: float = 0.1,
                 branches: Optional[Sequence[int]] = None) -> None:
        super().__init__()
        self.weight = weight
        self.branches = None if branches is None else list(branches)

    def forward(self, qout: QuantizerOutput,
                images: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """``{'loss_disentangle': scalar}``; needs at least two branches."""
        maps = qout.branches
        if self.branches is not None:
            maps = [maps[i] for i in self.branches]
        if len(maps) < 2:
            raise ValueError('DisentanglementRegularizer needs at least two '
                             f'branches, got {len(maps)}')
        pairs = [squared_cosine(a, b) for a, b in combinations(maps, 2)]
        return {'loss_disentangle': self.weight * sum(pairs) / len(pairs)}
