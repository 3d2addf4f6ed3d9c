"""k parallel linear classifiers (FQGAN Table 4's simplest head; with G = 1,
LlamaGen's output layer)."""
from typing import List, Optional

from torch import Tensor

from fqzoo.registry import GENERATORS

from .base import Embed, MultiTokenHead


@GENERATORS.register_module()
class ParallelLinearHead(MultiTokenHead):
    """``logits_g = W_g norm(h)``: the G sub-tokens of a position are
    predicted independently from the same state.

    Args:
        width (int): model width D.
        vocab_sizes (Sequence[int]): codes per sub-token.
        norm_eps (float): Defaults to 1e-5.

    Example:
        >>> head = ParallelLinearHead(width=16, vocab_sizes=[8, 8])
        >>> [t.shape for t in head(torch.randn(2, 3, 16), None, None)]
        [torch.Size([2, 3, 8]), torch.Size([2, 3, 8])]
    """

    def __init__(self, width: int, vocab_sizes, norm_eps: float = 1e-5):
        super().__init__(width, vocab_sizes, norm_eps)
        self.zero_outputs()

    def forward(self, h: Tensor, tokens: Optional[Tensor],
                embed: Embed) -> List[Tensor]:
        normed = self.norm(h)
        return [out(normed).float() for out in self.outputs]
