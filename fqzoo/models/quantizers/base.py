"""The quantizer contract every fqzoo quantizer follows.

A quantizer maps a latent ``z: [B, C, H, W]`` to a :class:`QuantizerOutput`:

- ``quantized``: same shape as ``z``, straight-through gradient to ``z``;
- ``indices``: ``LongTensor[B, G, H, W]`` with ``G == num_codebooks``;
- ``losses``: dict of scalar tensors whose keys start with ``loss_``;
- ``metrics``: dict of diagnostics (usage, perplexity ...), keys never
  contain ``loss``;
- ``branches``: the per-sub-codebook quantized maps (a list of ``G``-many or
  one tensor) that regularizers and semantic heads read.

``embed_indices(indices)`` inverts the lookup: in eval mode it returns
``quantized`` from ``indices``.
"""
from dataclasses import dataclass, field
from typing import Dict, List

import torch
from torch import Tensor, nn


@dataclass
class QuantizerOutput:
    """What every quantizer returns (see the module docstring)."""

    quantized: Tensor
    indices: Tensor
    losses: Dict[str, Tensor] = field(default_factory=dict)
    metrics: Dict[str, Tensor] = field(default_factory=dict)
    branches: List[Tensor] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.branches:
            self.branches = [self.quantized]


class BaseQuantizer(nn.Module):
    """Base class of fqzoo quantizers.

    Subclasses set ``num_codebooks`` (G, the index tuple length),
    ``codebook_size`` (codes per sub-codebook), ``embed_dim`` (lookup dim of
    one code), ``in_channels`` (channels of ``z``) and ``num_branches`` (how
    many channel groups ``z`` is made of: each gets its own encoder head in
    the tokenizer; 1 unless the quantizer factorizes the latent).
    """

    num_codebooks: int = 1
    codebook_size: int
    embed_dim: int
    in_channels: int
    num_branches: int = 1

    def forward(self, z: Tensor) -> QuantizerOutput:
        raise NotImplementedError

    def embed_indices(self, indices: Tensor) -> Tensor:
        """Map ``indices [B, G, H, W]`` back to ``quantized [B, C, H, W]``."""
        raise NotImplementedError


@torch.no_grad()
def codebook_metrics(indices: Tensor, codebook_size: int,
                     prefix: str = '') -> Dict[str, Tensor]:
    """Usage (fraction of codes hit) and perplexity of one index tensor."""
    counts = torch.bincount(indices.reshape(-1), minlength=codebook_size)
    probs = counts.float() / counts.sum().clamp(min=1)
    entropy = -(probs * torch.log(probs.clamp(min=1e-10))).sum()
    return {
        f'{prefix}usage': (counts > 0).float().mean(),
        f'{prefix}perplexity': entropy.exp(),
    }


def check_quantizer_output(quantizer: nn.Module, z: Tensor, out) -> None:
    """Fail early, naming the broken rule, when a quantizer breaks the
    contract (so a plugin's bug surfaces here, not inside the decoder)."""
    name = type(quantizer).__name__

    def fail(rule: str) -> None:
        raise TypeError(f'Quantizer {name} breaks the fqzoo quantizer '
                        f'contract: {rule}')

    if not isinstance(out, QuantizerOutput):
        fail(f'forward must return QuantizerOutput, got {type(out).__name__}')
    if out.quantized.shape != z.shape:
        fail(f'quantized must have the input shape {tuple(z.shape)}, '
             f'got {tuple(out.quantized.shape)}')
    groups = getattr(quantizer, 'num_codebooks', None)
    b, _, h, w = z.shape
    if (out.indices.dim() != 4 or out.indices.dtype != torch.long
            or tuple(out.indices.shape) != (b, groups, h, w)):
        fail(f'indices must be a LongTensor [B, G, H, W] = '
             f'{(b, groups, h, w)} with G=num_codebooks, got '
             f'{out.indices.dtype} {tuple(out.indices.shape)}')
    for key, value in out.losses.items():
        if not key.startswith('loss_'):
            fail(f'loss key "{key}" must start with "loss_"')
        if not (torch.is_tensor(value) and value.dim() == 0):
            fail(f'loss "{key}" must be a scalar tensor')
    for key in out.metrics:
        if 'loss' in key:
            fail(f'metric key "{key}" must not contain "loss"')
