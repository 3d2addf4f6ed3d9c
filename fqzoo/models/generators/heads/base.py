"""The multi-token prediction head interface.

A head turns the backbone's state at each position into logits for the G
sub-tokens of the token there (G = 1 for plain VQ, the number of
sub-codebooks for FQ, the depth for residual VQ). Every head owns the final
norm and one zero-initialised output layer per sub-token (as LlamaGen and FAR
do), so heads swap by config and a new quantizer with G sub-tokens needs no
new generator.
"""
from typing import Callable, List, Optional, Sequence

import torch
from torch import Tensor, nn

from ..layers import RMSNorm

Embed = Callable[[int, Tensor], Tensor]
Pick = Callable[[int, Tensor], Tensor]


class MultiTokenHead(nn.Module):
    """Base class: the final norm, the output layers and the two calls.

    Args:
        width (int): model width D.
        vocab_sizes (Sequence[int]): codes per sub-token, G entries.
        norm_eps (float): RMSNorm epsilon. Defaults to 1e-5.

    Subclasses implement :meth:`forward` (teacher-forced logits); heads
    whose sub-token logits do not depend on the other sub-tokens inherit
    :meth:`sample`.
    """

    def __init__(self, width: int, vocab_sizes: Sequence[int],
                 norm_eps: float = 1e-5) -> None:
        super().__init__()
        self.width = width
        self.vocab_sizes = [int(v) for v in vocab_sizes]
        self.norm = RMSNorm(width, norm_eps)
        self.outputs = nn.ModuleList(nn.Linear(width, v, bias=False)
                                     for v in self.vocab_sizes)

    @property
    def num_tokens(self) -> int:
        return len(self.vocab_sizes)

    def zero_outputs(self) -> None:
        """Output layers start at zero (uniform first predictions)."""
        for out in self.outputs:
            nn.init.zeros_(out.weight)

    def forward(self, h: Tensor, tokens: Optional[Tensor],
                embed: Embed) -> List[Tensor]:
        """Teacher-forced logits.

        Args:
            h (Tensor): backbone states ``[B, L, D]``; ``h[:, t]`` has seen
                the positions before ``t``.
            tokens (Tensor): the sub-tokens at the same positions
                ``[B, L, G]``; sub-token g's logits may read ``tokens[...,
                :g]`` and nothing else of position t.
            embed (callable): ``embed(g, indices)`` -> ``[..., D]``, the
                input embedding table of sub-token g.

        Returns:
            list[Tensor]: G float tensors ``[B, L, V_g]``.
        """
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, h: Tensor, pick: Pick, embed: Embed,
               use_cache: bool = True) -> Tensor:
        """Draw the G sub-tokens of one position, one after another.

        Args:
            h (Tensor): backbone states ``[B, D]`` of the position.
            pick (callable): ``pick(g, logits [B, V_g])`` -> ``[B]`` chosen
                indices (guidance, filtering and sampling live there).
            embed (callable): as in :meth:`forward`.
            use_cache (bool): reuse attention keys/values between the
                sub-token steps, where the head has attention.
                Defaults to True.

        Returns:
            Tensor: ``[B, G]``.
        """
        logits = self.forward(h[:, None], None, embed)
        return torch.stack([pick(g, lg[:, 0]) for g, lg in enumerate(logits)],
                           dim=-1)
