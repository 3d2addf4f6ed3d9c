"""FAR's factorized autoregressive head (FQGAN, Bai et al., 2024,
arXiv 2411.16681, Sec. 3.3).

For each position, a few causal transformer blocks run over the short
sequence ``[backbone state, emb_0(sub-token 0), ..., emb_{G-2}(sub-token
G-2)]``; output slot g is normed and read by sub-token g's own output layer,
so sub-token g is predicted from the context and the sub-tokens before it.
As in the released code, slot j uses row j of the backbone's rotary table:
slot 0 the class-token row (all zeros), slot j >= 1 grid cell ``(0, j - 1)``;
the embeddings are the backbone's input tables (shared).
"""
from typing import List, Optional, Sequence

import torch
from torch import Tensor

from fqzoo.registry import GENERATORS

from ..layers import TransformerStack, rope_table_2d
from .base import Embed, MultiTokenHead, Pick


@GENERATORS.register_module()
class FactorizedARHead(MultiTokenHead):
    """Sub-tokens of a position predicted one after another.

    Args:
        width (int): model width D.
        vocab_sizes (Sequence[int]): codes per sub-token, G entries.
        num_layers (int): transformer blocks (FAR-B: 3, FAR-L: 4).
        num_heads (int): attention heads (the backbone's in FAR).
        grid_size (tuple[int, int]): the token grid, for the rotary table;
            set by the composed generator.
        num_kv_heads, ffn_hidden_dim, rope_base, norm_eps, attn_dropout,
        resid_dropout, ffn_dropout, drop_path_rate: as
            :class:`~fqzoo.models.generators.LlamaGenBackbone`.

    Example:
        >>> head = FactorizedARHead(width=16, vocab_sizes=[8, 8],
        ...                         num_layers=1, num_heads=2,
        ...                         grid_size=(4, 4))
        >>> emb = torch.nn.Embedding(8, 16)
        >>> logits = head(torch.randn(2, 3, 16),
        ...               torch.zeros(2, 3, 2, dtype=torch.long),
        ...               lambda g, i: emb(i))
        >>> logits[1].shape
        torch.Size([2, 3, 8])
    """

    def __init__(self, width: int, vocab_sizes: Sequence[int],
                 num_layers: int, num_heads: int, grid_size: Sequence[int], *,
                 num_kv_heads: Optional[int] = None,
                 ffn_hidden_dim: Optional[int] = None,
                 rope_base: float = 10000.0, norm_eps: float = 1e-5,
                 attn_dropout: float = 0.0, resid_dropout: float = 0.1,
                 ffn_dropout: float = 0.1, drop_path_rate: float = 0.0):
        super().__init__(width, vocab_sizes, norm_eps)
        rope = rope_table_2d(tuple(grid_size), width // num_heads, rope_base,
                             num_prefix=1)[:self.num_tokens]
        self.stack = TransformerStack(
            num_layers, width, num_heads, rope, ffn_hidden_dim,
            drop_path_rate, num_kv_heads=num_kv_heads, norm_eps=norm_eps,
            attn_dropout=attn_dropout, resid_dropout=resid_dropout,
            ffn_dropout=ffn_dropout)
        self.zero_outputs()

    def forward(self, h: Tensor, tokens: Optional[Tensor],
                embed: Embed) -> List[Tensor]:
        batch, length, width = h.shape
        slots = [h] + [embed(g, tokens[..., g])
                       for g in range(self.num_tokens - 1)]
        ctx = torch.stack(slots, dim=2).reshape(batch * length,
                                                self.num_tokens, width)
        out = self.norm(self.stack(ctx)).view(batch, length, self.num_tokens,
                                              width)
        return [layer(out[:, :, g]).float()
                for g, layer in enumerate(self.outputs)]

    @torch.no_grad()
    def sample(self, h: Tensor, pick: Pick, embed: Embed,
               use_cache: bool = True) -> Tensor:
        x = h[:, None]
        seq = x
        if use_cache:
            self.stack.setup_cache(len(h), self.num_tokens, dtype=h.dtype,
                                   device=h.device)
        picked = []
        try:
            for g, layer in enumerate(self.outputs):
                state = (self.stack(x, start=g) if use_cache
                         else self.stack(seq))[:, -1]
                picked.append(pick(g, layer(self.norm(state)).float()))
                if g + 1 < self.num_tokens:
                    x = embed(g, picked[-1])[:, None]
                    seq = torch.cat([seq, x], dim=1)
        finally:
            self.stack.clear_cache()
        return torch.stack(picked, dim=-1)
