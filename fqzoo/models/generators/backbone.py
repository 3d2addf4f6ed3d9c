"""LlamaGen's class-conditional decoder-only transformer trunk.

Sun et al., 2024, "Autoregressive Model Beats Diffusion: Llama for Scalable
Image Generation" (arXiv 2406.06525): Llama blocks (RMSNorm, SwiGLU, 2-D
RoPE) over ``[class token, token 0, ..., token N-2]``; output ``t`` predicts
token ``t``. The final norm and the output layers belong to the prediction
head (:mod:`fqzoo.models.generators.heads`), as FAR's factorized head runs
before the norm.
"""
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from fqzoo.registry import GENERATORS

from .layers import TransformerStack, rope_table_2d


@GENERATORS.register_module()
class LlamaGenBackbone(nn.Module):
    """Causal Llama trunk with 2-D RoPE over a token grid and KV caches.

    Args:
        width (int): model width D.
        num_layers (int): transformer blocks.
        num_heads (int): attention heads.
        grid_size (tuple[int, int]): token grid ``(h, w)``; set by the
            composed generator.
        num_kv_heads (int, optional): grouped-query key/value heads.
            Defaults to None (``num_heads``).
        ffn_hidden_dim (int, optional): SwiGLU width. Defaults to None
            (Llama's rule, :func:`~.layers.swiglu_hidden_dim`).
        rope_base (float): rotary frequency base. Defaults to 10000.
        norm_eps (float): RMSNorm epsilon. Defaults to 1e-5.
        token_dropout (float): dropout on the input sequence. Defaults to 0.1.
        attn_dropout (float): Defaults to 0.
        resid_dropout (float): Defaults to 0.1.
        ffn_dropout (float): Defaults to 0.1.
        drop_path_rate (float): Defaults to 0.

    Example:
        >>> trunk = LlamaGenBackbone(width=64, num_layers=2, num_heads=4,
        ...                          grid_size=(4, 4))
        >>> trunk(torch.randn(2, 16, 64)).shape
        torch.Size([2, 16, 64])
    """

    num_prefix = 1  # the class token

    def __init__(self, width: int, num_layers: int, num_heads: int,
                 grid_size: Sequence[int], *,
                 num_kv_heads: Optional[int] = None,
                 ffn_hidden_dim: Optional[int] = None,
                 rope_base: float = 10000.0, norm_eps: float = 1e-5,
                 token_dropout: float = 0.1, attn_dropout: float = 0.0,
                 resid_dropout: float = 0.1, ffn_dropout: float = 0.1,
                 drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.width = width
        self.grid_size: Tuple[int, int] = tuple(grid_size)
        self.max_len = self.num_prefix + self.grid_size[0] * self.grid_size[1]
        self.tok_dropout = nn.Dropout(token_dropout)
        rope = rope_table_2d(self.grid_size, width // num_heads, rope_base,
                             self.num_prefix)
        self.stack = TransformerStack(
            num_layers, width, num_heads, rope, ffn_hidden_dim,
            drop_path_rate, num_kv_heads=num_kv_heads, norm_eps=norm_eps,
            attn_dropout=attn_dropout, resid_dropout=resid_dropout,
            ffn_dropout=ffn_dropout)

    @property
    def layers(self) -> nn.ModuleList:
        return self.stack.blocks

    def setup_cache(self, batch_size: int, *, dtype: torch.dtype,
                    device: torch.device) -> None:
        """KV caches for ``batch_size`` sequences of the full length."""
        self.stack.setup_cache(batch_size, self.max_len, dtype=dtype,
                               device=device)

    def clear_cache(self) -> None:
        self.stack.clear_cache()

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        """Hidden states ``[B, L, D]`` of the input embeddings ``x [B, L, D]``
        at positions ``[start, start + L)`` (position 0: the class token)."""
        return self.stack(self.tok_dropout(x), start)
