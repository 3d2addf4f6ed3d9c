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

Codebook health: a quantizer that tracks its codes holds one
:class:`CodeUsage` per sub-codebook; ``codebook_stats()`` returns their
windowed usage, perplexity and dead-code counts (metrics, never losses) and
``restart_dead_codes()`` re-seeds dead codes where the quantizer can.

Sizes: a quantizer refuses a size argument of its config (``codebook_size``,
``embed_dim``, ``num_codebooks`` ...) that is not a positive integer with
:func:`check_sizes`, an :class:`~fqzoo.errors.InputError` naming the class,
the argument and the value.
"""
import math
import numbers
from abc import ABCMeta, abstractmethod
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from fqzoo.errors import InputError


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


class BaseQuantizer(nn.Module, metaclass=ABCMeta):
    """Base class of fqzoo quantizers.

    Subclasses set ``num_codebooks`` (G, the index tuple length),
    ``codebook_size`` (codes per sub-codebook), ``embed_dim`` (lookup dim of
    one code), ``in_channels`` (channels of ``z``) and ``num_branches`` (how
    many channel groups ``z`` is made of: each gets its own encoder head in
    the tokenizer; 1 unless the quantizer factorizes the latent), and
    implement :meth:`forward` and :meth:`embed_indices`: a subclass missing
    either cannot be instantiated (``TypeError`` naming the method).
    """

    num_codebooks: int = 1
    codebook_size: int
    embed_dim: int
    in_channels: int
    num_branches: int = 1

    @abstractmethod
    def forward(self, z: Tensor) -> QuantizerOutput:
        """Quantize ``z [B, C, H, W]`` (see the module docstring)."""

    @abstractmethod
    def embed_indices(self, indices: Tensor) -> Tensor:
        """Map ``indices [B, G, H, W]`` back to ``quantized [B, C, H, W]``."""

    def codebook_stats(self) -> List[Dict[str, Tensor]]:
        """Windowed statistics of every sub-codebook, in index order.

        Returns:
            list[dict]: one ``{'usage', 'perplexity', 'dead_codes'}`` dict per
            :class:`CodeUsage` found in this module tree (empty when the
            quantizer tracks none).
        """
        return [m.stats() for m in self.modules() if isinstance(m, CodeUsage)]

    def restart_dead_codes(self) -> int:
        """Re-seed dead codes; returns how many were re-seeded. Quantizers
        without a learnable codebook have nothing to restart."""
        return 0


def merge_metrics(per_sub: List[Dict[str, Tensor]]) -> Dict[str, Tensor]:
    """``key_i`` for sub-quantizer ``i`` plus the mean ``key`` over them."""
    merged = {}
    for i, metrics in enumerate(per_sub):
        merged.update({f'{key}_{i}': value for key, value in metrics.items()})
    for key in per_sub[0]:
        merged[key] = torch.stack([m[key] for m in per_sub]).float().mean()
    return merged


def sum_losses(per_sub: List[Dict[str, Tensor]]) -> Dict[str, Tensor]:
    """Losses summed per key across sub-quantizers."""
    summed: Dict[str, Tensor] = {}
    for losses in per_sub:
        for key, value in losses.items():
            summed[key] = summed[key] + value if key in summed else value
    return summed


def commitment_losses(z: Tensor, q: Tensor, beta: float,
                      beta_on_codebook: bool = False) -> Dict[str, Tensor]:
    """VQ-VAE's pair: ``loss_commit = mse(z, sg(q))`` pulls the encoder to
    its code, ``loss_codebook = mse(q, sg(z))`` the code to the encoder;
    ``beta`` weights the commitment (VQ-VAE) or, with
    ``beta_on_codebook=True``, the codebook term (the SimVQ ``legacy`` and
    IBQ releases)."""
    commit = F.mse_loss(z, q.detach())
    codebook = F.mse_loss(q, z.detach())
    if beta_on_codebook:
        return {'loss_commit': commit, 'loss_codebook': beta * codebook}
    return {'loss_commit': beta * commit, 'loss_codebook': codebook}


def straight_through(z: Tensor, q: Tensor) -> Tensor:
    """Value ``q`` exactly, gradient of the identity to ``z`` (STE)."""
    return q.detach() + (z - z.detach())


def rotate_to(z: Tensor, q: Tensor, eps: float = 1e-6) -> Tensor:
    """The rotation trick (Fifty et al. 2024, "Restructuring Vector
    Quantization with the Rotation Trick", arXiv 2410.06424, section 4.2):
    value ``q`` exactly, gradient through the rotation and rescaling that
    map each row of ``z`` onto the row of ``q``, held fixed.

    With ``u = z / |z|``, ``v = q / |q|``, ``w = (u + v) / |u + v|`` and
    ``s = |q| / |z|`` (all treated as constants), the rows
    ``s (z - 2 <z, w> w + 2 <z, u> v)`` equal ``q``; the gradient to ``z`` is
    ``s (g - 2 <g, w> w + 2 <g, v> u)`` (``R^T g`` for the rotation ``R``
    taking ``u`` to ``v``). Nothing reaches ``q``: codes learn through their
    losses, as with the straight-through estimator. Norms are clamped at
    ``eps`` and ``w`` is normalised with ``eps``, as vector-quantize-pytorch's
    ``rotate_to`` does (its gradients are those of this function, checked
    in ``tests/test_models/test_quantizers/test_rotation_trick.py``); unlike
    it, the forward value is ``q`` itself, not its rotated copy (which
    differs by rounding, and when ``u = -v``).

    Args:
        z (Tensor): ``[..., D]`` encoder outputs.
        q (Tensor): ``[..., D]`` their codes.
        eps (float): clamp of the norms. Defaults to 1e-6.

    Returns:
        Tensor: ``q``'s value with the rotation trick's gradient to ``z``.
    """
    z_norm = z.norm(dim=-1, keepdim=True)
    q_norm = q.detach().norm(dim=-1, keepdim=True)
    u = (z / z_norm.clamp(min=eps)).detach()
    v = q.detach() / q_norm.clamp(min=eps)
    w = F.normalize(u + v, dim=-1, eps=eps)
    rotated = (z - 2 * (z * w).sum(-1, keepdim=True) * w
               + 2 * (z * u).sum(-1, keepdim=True) * v)
    rotated = rotated * (q_norm / z_norm.clamp(min=eps)).detach()
    return q.detach() + (rotated - rotated.detach())


def pass_gradient(z: Tensor, q: Tensor, rotation_trick: bool) -> Tensor:
    """``q``'s value with the gradient of :func:`rotate_to` or, without the
    rotation trick, of :func:`straight_through`."""
    return rotate_to(z, q) if rotation_trick else straight_through(z, q)


def dist_ready() -> bool:
    return dist.is_available() and dist.is_initialized()


@torch.no_grad()
def global_code_counts(indices: Tensor, codebook_size: int) -> Tensor:
    """Code histogram of ``indices``, summed over processes when
    ``torch.distributed`` is initialised."""
    counts = torch.bincount(indices.reshape(-1), minlength=codebook_size)
    if dist_ready():
        dist.all_reduce(counts)
    return counts


class CodeUsage(nn.Module):
    """Sliding window of code counts for one codebook (buffers, so they are
    saved, resumed and moved with the model).

    The window is kept as ``buckets`` partial sums of ``s = ceil(window /
    buckets)`` steps each, so memory is ``buckets * K`` and the statistics
    cover the last ``(buckets - 1) * s + 1`` to ``buckets * s`` steps (from
    ``window - s + 1`` to ``window`` when ``buckets`` divides ``window``,
    up to ``buckets - 1`` steps more when it does not).

    Args:
        codebook_size (int): number of codes K.
        window (int): steps the statistics cover. Defaults to 100.
        buckets (int): partial sums the window is kept as. Defaults to 10.
        dead_after (int, optional): a code not hit for this many steps is
            dead. Defaults to ``window``.
    """

    def __init__(self, codebook_size: int, window: int = 100,
                 buckets: int = 10,
                 dead_after: Optional[int] = None) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.buckets = min(buckets, window)
        self.steps_per_bucket = math.ceil(window / self.buckets)
        self.dead_after = window if dead_after is None else dead_after
        self.register_buffer(
            'window_counts',
            torch.zeros(self.buckets, codebook_size, dtype=torch.int32))
        self.register_buffer('last_hit',
                             torch.zeros(codebook_size, dtype=torch.long))
        self.register_buffer('step', torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, counts: Tensor) -> None:
        """Add one step's code histogram ``counts [K]``."""
        step = int(self.step)
        bucket = (step // self.steps_per_bucket) % self.buckets
        if step % self.steps_per_bucket == 0:
            self.window_counts[bucket].zero_()
        self.window_counts[bucket] += counts.to(torch.int32)
        self.step += 1
        self.last_hit.masked_fill_(counts > 0, step + 1)

    def dead_mask(self) -> Tensor:
        """Codes not hit during the last ``dead_after`` steps
        (``last_hit`` counts the steps done when a code was last hit)."""
        return (self.step - self.last_hit) >= self.dead_after

    @torch.no_grad()
    def mark_restarted(self, mask: Tensor) -> None:
        """Give re-seeded codes a fresh ``dead_after`` grace period."""
        self.last_hit.masked_fill_(mask, int(self.step))

    @torch.no_grad()
    def stats(self) -> Dict[str, Tensor]:
        counts = self.window_counts.sum(0).float()
        probs = counts / counts.sum().clamp(min=1)
        entropy = -(probs * torch.log(probs.clamp(min=1e-10))).sum()
        return {
            'usage': (counts > 0).float().mean(),
            'perplexity': entropy.exp(),
            'dead_codes': self.dead_mask().sum(),
        }


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


def check_sizes(quantizer: nn.Module, **sizes) -> None:
    """Refuse each size argument that is not a positive integer (``0``,
    ``-1``, ``2.5``, ``True``, ``'8'``) before it fails deep inside a layer.

    Args:
        quantizer (nn.Module): the quantizer being built; its class is named.
        **sizes: the arguments to check, by name, as given.

    Raises:
        InputError: ``<Class>: <name> must be a positive integer, got
            <value>`` for the first bad one.
    """
    for name, value in sizes.items():
        if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
                or value < 1):
            raise InputError(f'{type(quantizer).__name__}: {name} must be a '
                             f'positive integer, got {value!r}')


CONTRACT_ATTRIBUTES = {
    'num_codebooks': 'G, sub-codebooks per token',
    'codebook_size': 'codes per sub-codebook',
    'in_channels': 'channels of z',
    'num_branches': 'channel groups of z, one encoder head each',
}


def check_quantizer_attributes(quantizer: nn.Module) -> None:
    """Fail, naming what is missing, when a quantizer lacks an attribute of
    the contract (:data:`CONTRACT_ATTRIBUTES`) the tokenizer reads."""
    missing = [f'{name} ({meaning})'
               for name, meaning in CONTRACT_ATTRIBUTES.items()
               if not isinstance(getattr(quantizer, name, None), int)]
    if missing:
        raise TypeError(f'Quantizer {type(quantizer).__name__} breaks the '
                        'fqzoo quantizer contract: it must set the int '
                        f'attribute(s) {", ".join(missing)}')


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
