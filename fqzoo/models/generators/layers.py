"""Building blocks of LlamaGen-style token models (not registered).

LlamaGen (Sun et al., 2024, "Autoregressive Model Beats Diffusion: Llama for
Scalable Image Generation", arXiv 2406.06525) uses Llama's decoder block:
RMSNorm, SwiGLU feed-forward, rotary position embedding (2-D over the token
grid), ``scaled_dot_product_attention``. The parameter names (``attention.wqkv``,
``feed_forward.w1`` ...) follow the released checkpoints' key layout, so a
converter only renames prefixes.

Two facts of the released code are kept because checkpoints were trained with
them: the rotary table has an all-zero row for each class-token position (the
class token's query and key are multiplied by zero), and rotation pairs are
adjacent channels ``(2i, 2i + 1)``; the first half of the pairs rotates with
the token's row, the second half with its column.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def find_multiple(n: int, k: int) -> int:
    """The smallest multiple of ``k`` that is >= ``n``."""
    return n if n % k == 0 else n + k - n % k


def swiglu_hidden_dim(width: int, multiple_of: int = 256) -> int:
    """Llama's SwiGLU width: 2/3 of ``4 * width``, rounded up to
    ``multiple_of`` (768 -> 2048, 1024 -> 2816, 1280 -> 3584)."""
    return find_multiple(int(2 * 4 * width / 3), multiple_of)


def rope_table_2d(grid_size: Tuple[int, int], head_dim: int,
                  base: float = 10000.0, num_prefix: int = 1) -> Tensor:
    """Rotary angles of a ``num_prefix``-token prefix then a raster grid.

    Args:
        grid_size (tuple[int, int]): token grid ``(h, w)``.
        head_dim (int): channels per attention head (a multiple of 4).
        base (float): frequency base. Defaults to 10000.
        num_prefix (int): class-token positions first, whose rows are all
            zero (cos = sin = 0, as in the released LlamaGen/FAR code).
            Defaults to 1.

    Returns:
        Tensor: ``[num_prefix + h * w, head_dim // 2, 2]`` (cos, sin) per
        rotation pair; pairs ``[0, head_dim // 4)`` rotate with the row,
        the others with the column.
    """
    if head_dim % 4:
        raise ValueError(f'2-D rotary embedding needs head_dim divisible by '
                         f'4, got {head_dim}')
    half = head_dim // 2
    freqs = 1.0 / (base ** (torch.arange(0, half, 2)[:half // 2].float() / half))
    rows, cols = grid_size
    row_angles = torch.outer(torch.arange(rows), freqs)
    col_angles = torch.outer(torch.arange(cols), freqs)
    angles = torch.cat([row_angles[:, None, :].expand(-1, cols, -1),
                        col_angles[None, :, :].expand(rows, -1, -1)], dim=-1)
    table = torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)
    return torch.cat([torch.zeros(num_prefix, half, 2), table.flatten(0, 1)])


def apply_rope(x: Tensor, table: Tensor) -> Tensor:
    """Rotate ``x [B, L, H, D]`` by ``table [L, D // 2, 2]`` (in float32,
    or in ``x``'s dtype when wider)."""
    pairs = x.to(torch.promote_types(x.dtype, torch.float32))
    pairs = pairs.reshape(*x.shape[:-1], -1, 2)
    cos = table[None, :, None, :, 0]
    sin = table[None, :, None, :, 1]
    even, odd = pairs[..., 0], pairs[..., 1]
    rotated = torch.stack([even * cos - odd * sin, odd * cos + even * sin],
                          dim=-1)
    return rotated.flatten(3).type_as(x)


class RMSNorm(nn.Module):
    """Root-mean-square norm computed in float32 (or in the input's dtype
    when wider), with a learned scale."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        x32 = x.to(torch.promote_types(x.dtype, torch.float32))
        normed = x32 * torch.rsqrt(torch.mean(x32 * x32, dim=-1, keepdim=True)
                                   + self.eps)
        return normed.type_as(x) * self.weight


class FeedForward(nn.Module):
    """SwiGLU: ``w2(silu(w1 x) * w3 x)``, then dropout."""

    def __init__(self, width: int, hidden_dim: int, dropout: float = 0.0):
        super().__init__()
        self.w1 = nn.Linear(width, hidden_dim, bias=False)
        self.w3 = nn.Linear(width, hidden_dim, bias=False)
        self.w2 = nn.Linear(hidden_dim, width, bias=False)
        self.ffn_dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.ffn_dropout(self.w2(F.silu(self.w1(x)) * self.w3(x)))


class KVCache:
    """Keys and values of the positions seen so far, preallocated.

    Args:
        batch_size (int): rows.
        max_len (int): positions.
        num_heads (int): key/value heads.
        head_dim (int): channels per head.
        dtype, device: of the buffers.
    """

    def __init__(self, batch_size: int, max_len: int, num_heads: int,
                 head_dim: int, dtype: torch.dtype,
                 device: torch.device) -> None:
        shape = (batch_size, num_heads, max_len, head_dim)
        self.keys = torch.zeros(shape, dtype=dtype, device=device)
        self.values = torch.zeros(shape, dtype=dtype, device=device)

    def update(self, start: int, keys: Tensor,
               values: Tensor) -> Tuple[Tensor, Tensor]:
        """Write ``[B, H, L, D]`` at positions ``[start, start + L)`` and
        return the keys and values of positions ``[0, start + L)``."""
        stop = start + keys.shape[2]
        if stop > self.keys.shape[2]:
            raise IndexError(f'KV cache holds {self.keys.shape[2]} positions, '
                             f'asked to write up to {stop}')
        self.keys[:, :, start:stop] = keys
        self.values[:, :, start:stop] = values
        return self.keys[:, :, :stop], self.values[:, :, :stop]


class Attention(nn.Module):
    """Causal multi-head (grouped-query) attention with 2-D RoPE.

    Args:
        width (int): model width.
        num_heads (int): query heads.
        num_kv_heads (int, optional): key/value heads (grouped-query
            attention). Defaults to None (``num_heads``).
        attn_dropout (float): attention dropout. Defaults to 0.
        resid_dropout (float): dropout on the output. Defaults to 0.
    """

    def __init__(self, width: int, num_heads: int,
                 num_kv_heads: Optional[int] = None, attn_dropout: float = 0.0,
                 resid_dropout: float = 0.0) -> None:
        super().__init__()
        if width % num_heads:
            raise ValueError(f'width {width} is not divisible by num_heads '
                             f'{num_heads}')
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads or num_heads
        if num_heads % self.num_kv_heads:
            raise ValueError(f'num_heads {num_heads} is not a multiple of '
                             f'num_kv_heads {self.num_kv_heads}')
        self.head_dim = width // num_heads
        self.width = width
        kv_width = self.num_kv_heads * self.head_dim
        self.wqkv = nn.Linear(width, width + 2 * kv_width, bias=False)
        self.wo = nn.Linear(width, width, bias=False)
        self.attn_dropout = attn_dropout
        self.resid_dropout = nn.Dropout(resid_dropout)

    def forward(self, x: Tensor, rope: Tensor, cache: Optional[KVCache] = None,
                start: int = 0) -> Tensor:
        """``x [B, L, D]`` at positions ``[start, start + L)``; with a
        ``cache`` the earlier positions' keys and values come from it."""
        batch, length, _ = x.shape
        kv_width = self.num_kv_heads * self.head_dim
        q, k, v = self.wqkv(x).split([self.width, kv_width, kv_width], dim=-1)
        q = apply_rope(q.view(batch, length, self.num_heads, self.head_dim),
                       rope)
        k = apply_rope(k.view(batch, length, self.num_kv_heads,
                              self.head_dim), rope)
        v = v.view(batch, length, self.num_kv_heads, self.head_dim)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        mask, causal = None, True
        if cache is not None:
            k, v = cache.update(start, k, v)
            causal = False
            if length > 1:
                key_pos = torch.arange(k.shape[2], device=x.device)
                query_pos = torch.arange(start, start + length, device=x.device)
                mask = key_pos[None, :] <= query_pos[:, None]
        if self.num_kv_heads != self.num_heads:
            repeat = self.num_heads // self.num_kv_heads
            k = k.repeat_interleave(repeat, dim=1)
            v = v.repeat_interleave(repeat, dim=1)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal,
            dropout_p=self.attn_dropout if self.training else 0.0)
        out = out.transpose(1, 2).reshape(batch, length, self.width)
        return self.resid_dropout(self.wo(out))


def _drop_path(rate: float) -> nn.Module:
    """timm's stochastic depth for ``rate > 0``, else the identity (timm is
    imported only then: it pulls in torch._dynamo)."""
    if rate <= 0:
        return nn.Identity()
    from timm.layers import DropPath

    return DropPath(rate)


class TransformerBlock(nn.Module):
    """Pre-norm Llama block: ``x + attn(norm(x))``, ``h + ffn(norm(h))``.

    Args:
        width (int): model width.
        num_heads (int): attention heads.
        ffn_hidden_dim (int): SwiGLU hidden width.
        num_kv_heads (int, optional): see :class:`Attention`.
        norm_eps (float): RMSNorm epsilon. Defaults to 1e-5.
        attn_dropout, resid_dropout, ffn_dropout (float): dropouts.
        drop_path (float): stochastic depth rate. Defaults to 0.
    """

    def __init__(self, width: int, num_heads: int, ffn_hidden_dim: int, *,
                 num_kv_heads: Optional[int] = None, norm_eps: float = 1e-5,
                 attn_dropout: float = 0.0, resid_dropout: float = 0.0,
                 ffn_dropout: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.attention = Attention(width, num_heads, num_kv_heads,
                                   attn_dropout, resid_dropout)
        self.feed_forward = FeedForward(width, ffn_hidden_dim, ffn_dropout)
        self.attention_norm = RMSNorm(width, norm_eps)
        self.ffn_norm = RMSNorm(width, norm_eps)
        self.drop_path = _drop_path(drop_path)

    def forward(self, x: Tensor, rope: Tensor, cache: Optional[KVCache] = None,
                start: int = 0) -> Tensor:
        h = x + self.drop_path(self.attention(self.attention_norm(x), rope,
                                              cache, start))
        return h + self.drop_path(self.feed_forward(self.ffn_norm(h)))


class TransformerStack(nn.Module):
    """Causal blocks over a sequence whose positions index a rotary table,
    with optional KV caches (one per block).

    Args:
        num_layers (int): blocks.
        width (int): model width.
        num_heads (int): attention heads.
        rope (Tensor): ``[max_len, head_dim // 2, 2]`` rotary table
            (:func:`rope_table_2d`); position ``p`` of the sequence uses row
            ``p``.
        ffn_hidden_dim (int, optional): defaults to
            :func:`swiglu_hidden_dim` of ``width``.
        drop_path_rate (float): stochastic depth of the last block, rising
            linearly from 0. Defaults to 0.
        **block_kwargs: the rest of :class:`TransformerBlock`'s arguments.
    """

    def __init__(self, num_layers: int, width: int, num_heads: int,
                 rope: Tensor, ffn_hidden_dim: Optional[int] = None,
                 drop_path_rate: float = 0.0, **block_kwargs) -> None:
        super().__init__()
        ffn_hidden_dim = ffn_hidden_dim or swiglu_hidden_dim(width)
        rates = [drop_path_rate * i / max(num_layers - 1, 1)
                 for i in range(num_layers)]
        self.blocks = nn.ModuleList(
            TransformerBlock(width, num_heads, ffn_hidden_dim,
                             drop_path=rate, **block_kwargs)
            for rate in rates)
        self.register_buffer('rope', rope, persistent=False)
        self.caches: Optional[Sequence[KVCache]] = None

    def setup_cache(self, batch_size: int, max_len: int, *,
                    dtype: torch.dtype, device: torch.device) -> None:
        """Allocate one KV cache per block; :meth:`forward` then reads and
        extends it."""
        attn = self.blocks[0].attention
        self.caches = [KVCache(batch_size, max_len, attn.num_kv_heads,
                               attn.head_dim, dtype, device)
                       for _ in self.blocks]

    def clear_cache(self) -> None:
        self.caches = None

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        """``x [B, L, D]`` at positions ``[start, start + L)``."""
        if start + x.shape[1] > len(self.rope):
            raise IndexError(f'positions up to {start + x.shape[1]} asked, '
                             f'the rotary table has {len(self.rope)}')
        rope = self.rope[start:start + x.shape[1]]
        caches = self.caches or [None] * len(self.blocks)
        for block, cache in zip(self.blocks, caches):
            x = block(x, rope, cache, start)
        return x


def init_linear_embedding(module: nn.Module, std: float = 0.02) -> None:
    """GPT-2 init: linear and embedding weights ``N(0, std)``, biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=std)
            if getattr(m, 'bias', None) is not None:
                nn.init.zeros_(m.bias)


__all__ = ['find_multiple', 'swiglu_hidden_dim', 'rope_table_2d', 'apply_rope',
           'RMSNorm', 'FeedForward', 'KVCache', 'Attention', 'TransformerBlock',
           'TransformerStack', 'init_linear_embedding']
