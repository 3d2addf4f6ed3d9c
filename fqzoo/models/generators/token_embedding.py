"""The input embedding of a position from its G sub-tokens.

FQGAN's FAR (Bai et al., 2024, arXiv 2411.16681) embeds each sub-token with
its own table (one per sub-codebook), concatenates the G embeddings and
projects them to the model width with one linear layer. With G = 1 this is
LlamaGen's plain token embedding (no projection).
"""
from typing import Sequence

import torch
from torch import Tensor, nn

from fqzoo.registry import GENERATORS


@GENERATORS.register_module()
class FactorizedTokenEmbedding(nn.Module):
    """One embedding table per sub-codebook, merged by a linear layer.

    Args:
        width (int): model width D (every table's width too).
        vocab_sizes (Sequence[int]): codes per sub-codebook, G entries.

    The tables are also what the factorized head embeds earlier sub-tokens
    of a position with (:meth:`embed`), as in the released FAR code.

    Example:
        >>> emb = FactorizedTokenEmbedding(width=16, vocab_sizes=[8, 8])
        >>> emb(torch.zeros(2, 5, 2, dtype=torch.long)).shape
        torch.Size([2, 5, 16])
    """

    def __init__(self, width: int, vocab_sizes: Sequence[int]) -> None:
        super().__init__()
        self.vocab_sizes = [int(v) for v in vocab_sizes]
        self.tables = nn.ModuleList(nn.Embedding(v, width)
                                    for v in self.vocab_sizes)
        self.proj = (nn.Linear(width * len(self.vocab_sizes), width)
                     if len(self.vocab_sizes) > 1 else nn.Identity())

    def embed(self, g: int, indices: Tensor) -> Tensor:
        """Sub-token ``g``'s embedding, ``[..., D]``."""
        return self.tables[g](indices)

    def forward(self, tokens: Tensor) -> Tensor:
        """``tokens [B, L, G]`` -> ``[B, L, D]``."""
        if tokens.shape[-1] != len(self.tables):
            raise ValueError(f'tokens have {tokens.shape[-1]} sub-tokens, the '
                             f'embedding has {len(self.tables)} tables')
        return self.proj(torch.cat([table(tokens[..., g])
                                    for g, table in enumerate(self.tables)],
                                   dim=-1))
