"""k parallel MLP classifiers (a FQGAN Table 4 alternative head)."""
from typing import List, Optional

from torch import Tensor, nn

from fqzoo.registry import GENERATORS

from ..layers import init_linear_embedding
from .base import Embed, MultiTokenHead


@GENERATORS.register_module()
class ParallelMLPHead(MultiTokenHead):
    """``logits_g = W_g mlp_g(norm(h))`` with a residual GELU MLP per
    sub-token: independent predictions with more capacity per sub-token.

    Args:
        width (int): model width D.
        vocab_sizes (Sequence[int]): codes per sub-token.
        hidden_dim (int, optional): MLP width. Defaults to None (``4 * D``).
        num_layers (int): residual MLP blocks per sub-token. Defaults to 1.
        norm_eps (float): Defaults to 1e-5.

    Example:
        >>> head = ParallelMLPHead(width=16, vocab_sizes=[8, 8])
        >>> head(torch.randn(2, 3, 16), None, None)[1].shape
        torch.Size([2, 3, 8])
    """

    def __init__(self, width: int, vocab_sizes, hidden_dim=None,
                 num_layers: int = 1, norm_eps: float = 1e-5) -> None:
        super().__init__(width, vocab_sizes, norm_eps)
        hidden_dim = hidden_dim or 4 * width
        self.mlps = nn.ModuleList(
            nn.ModuleList(nn.Sequential(nn.LayerNorm(width),
                                        nn.Linear(width, hidden_dim),
                                        nn.GELU(approximate='tanh'),
                                        nn.Linear(hidden_dim, width))
                          for _ in range(num_layers))
            for _ in self.vocab_sizes)
        init_linear_embedding(self.mlps)
        self.zero_outputs()

    def forward(self, h: Tensor, tokens: Optional[Tensor],
                embed: Embed) -> List[Tensor]:
        normed = self.norm(h)
        logits = []
        for mlp, out in zip(self.mlps, self.outputs):
            x = normed
            for block in mlp:
                x = x + block(x)
            logits.append(out(x).float())
        return logits
