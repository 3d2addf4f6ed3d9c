"""Index backpropagation quantization (IBQ: "Taming Scalable Visual Tokenizer
for Autoregressive Image Generation", Shi et al. 2024, arXiv 2412.02692).

The token's code is the one of largest logit ``<z, e_k>``; the quantized
vector is ``(hard - sg(soft) + soft) E`` with ``soft = softmax(z E^T)``: its
value is the hard code, its gradient passes through the softmax over all
``K`` codes, so every code (not only the chosen ones) and the encoder get a
gradient, which keeps large codebooks in use.

That softmax is an ``[N, K]`` matrix (16 GiB in float32 at 16384 tokens and
``2^18`` codes), and so is the entropy loss's. :func:`index_backprop` and
:func:`blocked_entropy_loss` compute forward and backward a block of
``[tokens, codes]`` at a time (custom autograd functions
that recompute each block's softmax from saved row statistics), so the
extra memory is a few 4 MiB blocks plus the ``[K, D]`` codebook gradients,
whatever ``N``; docs/benchmarks.md compares it with the released module.

Checked against the released module (TencentARC/SEED-Voken,
``src/IBQ/modules/vqvae/quantize.py``, class ``IndexPropagationQuantize``):
same state-dict key (``embedding.weight``), indices, quantized output, each
loss and gradients to ``z`` and the codebook; pinned by
``tests/test_models/test_quantizers/test_ibq.py`` and re-run against a
checkout by ``tools/dev/compare_released.py`` (docs/quantizers.md).
"""
import math
from typing import Tuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from fqzoo.registry import QUANTIZERS

from .base import (
    BaseQuantizer,
    CodeUsage,
    QuantizerOutput,
    check_sizes,
    codebook_metrics,
    commitment_losses,
    global_code_counts,
)
from .search import nearest_code


def _blocks(num_tokens: int, num_codes: int,
            block_size: int) -> Tuple[int, int]:
    """Rows (at most 4096 tokens) and columns (codes) of one ``[tokens,
    codes]`` block of at most ``block_size`` entries."""
    rows = max(1, min(num_tokens, 4096, block_size))
    return rows, max(1, min(num_codes, block_size // rows))


class _SoftmaxMean(torch.autograd.Function):
    """``softmax(z E^T) @ V`` and its exact gradients, a block of ``[tokens,
    codes]`` at a time. ``shift`` is a per-row constant (the largest logit)
    subtracted before ``exp``; the value does not depend on it."""

    @staticmethod
    def forward(ctx, z: Tensor, codebook: Tensor, values: Tensor,
                shift: Tensor, block_size: int) -> Tensor:
        total = torch.zeros_like(shift)
        mean = z.new_zeros(z.shape[0], values.shape[1])
        rows, cols = _blocks(z.shape[0], codebook.shape[0], block_size)
        for t in range(0, z.shape[0], rows):
            zt, st = z[t:t + rows], shift[t:t + rows, None]
            for c in range(0, codebook.shape[0], cols):
                probs = torch.addmm(-st, zt, codebook[c:c + cols].t()).exp_()
                total[t:t + rows] += probs.sum(1)
                mean[t:t + rows].addmm_(probs, values[c:c + cols])
        mean /= total[:, None]
        log_norm = shift + total.log()
        ctx.save_for_backward(z, codebook, values, log_norm, mean)
        ctx.block_size = block_size
        return mean

    @staticmethod
    def backward(ctx, grad: Tensor):
        z, codebook, values, log_norm, mean = ctx.saved_tensors
        need_z, need_codes, need_values = ctx.needs_input_grad[:3]
        grad = grad.contiguous()
        # d p_k = <g, v_k>; softmax: d logit_k = p_k (<g, v_k> - <g, mean>)
        centre = (grad * mean).sum(1, keepdim=True)
        grad_z = torch.zeros_like(z) if need_z else None
        grad_codes = torch.zeros_like(codebook) if need_codes else None
        grad_values = torch.zeros_like(values) if need_values else None
        rows, cols = _blocks(z.shape[0], codebook.shape[0], ctx.block_size)
        for t in range(0, z.shape[0], rows):
            zt, gt = z[t:t + rows], grad[t:t + rows]
            shift, ct = log_norm[t:t + rows, None], centre[t:t + rows]
            for c in range(0, codebook.shape[0], cols):
                codes = codebook[c:c + cols]
                probs = torch.addmm(-shift, zt, codes.t()).exp_()
                if need_values:
                    grad_values[c:c + cols].addmm_(probs.t(), gt)
                if not (need_z or need_codes):
                    continue
                dots = torch.addmm(-ct, gt, values[c:c + cols].t())
                grad_logits = probs.mul_(dots)
                if need_z:
                    grad_z[t:t + rows].addmm_(grad_logits, codes)
                if need_codes:
                    grad_codes[c:c + cols].addmm_(grad_logits.t(), zt)
        return grad_z, grad_codes, grad_values, None, None


def softmax_mean(z: Tensor, codebook: Tensor, values: Tensor, shift: Tensor,
                 block_size: int = 2 ** 20) -> Tensor:
    """``softmax(z @ codebook.T) @ values`` without the ``[N, K]`` matrix.

    Forward and backward run a ``[tokens, codes]`` block of at most
    ``block_size`` entries at a time; the backward recomputes each block's
    probabilities from the saved row log-normalisers.

    Args:
        z (Tensor): ``[N, D]`` queries.
        codebook (Tensor): ``[K, D]`` keys.
        values (Tensor): ``[K, V]`` values.
        shift (Tensor): ``[N]`` per-row constants near the largest logit
            (for a stable ``exp``; not differentiated).
        block_size (int): entries of one block. Defaults to ``2 ** 20``.

    Returns:
        Tensor: ``[N, V]``.
    """
    return _SoftmaxMean.apply(z, codebook, values, shift.detach(),
                              block_size)


class _EntropyTerms(torch.autograd.Function):
    """Mean per-row entropy minus ``batch_weight`` times the entropy of the
    mean of ``softmax(z E^T / T)``, and its exact gradients, a block of
    ``[tokens, codes]`` at a time."""

    @staticmethod
    def forward(ctx, z: Tensor, codebook: Tensor, shift: Tensor,
                temperature: float, batch_weight: float, eps: float,
                block_size: int) -> Tensor:
        rows, cols = _blocks(z.shape[0], codebook.shape[0], block_size)
        # log p >= log(tiny) + 1: no subnormal exp (slow on CPU); changes
        # only probabilities below e * tiny
        floor = math.log(torch.finfo(z.dtype).tiny) + 1
        total = torch.zeros_like(shift)
        for t, _, logits in _logit_blocks(z, codebook, rows, cols,
                                          temperature):
            total[t:t + rows] += (logits - shift[t:t + rows, None]).clamp_(
                min=floor).exp_().sum(1)
        log_norm = shift + total.log()
        mean_probs = codebook.new_zeros(codebook.shape[0])
        sample_entropy = torch.zeros_like(shift)
        for t, c, logits in _logit_blocks(z, codebook, rows, cols,
                                          temperature):
            log_probs = logits.sub_(log_norm[t:t + rows, None]).clamp_(
                min=floor)
            probs = log_probs.exp()
            mean_probs[c:c + cols] += probs.sum(0)
            sample_entropy[t:t + rows] -= (probs * log_probs).sum(1)
        mean_probs /= z.shape[0]
        log_mean = torch.log(mean_probs + eps)
        batch_entropy = -(mean_probs * log_mean).sum()
        # d(-batch_weight * H(a)) / da
        weight = batch_weight * (log_mean + mean_probs / (mean_probs + eps))
        ctx.save_for_backward(z, codebook, log_norm, sample_entropy, weight)
        ctx.args = (temperature, floor, rows, cols)
        return sample_entropy.mean() - batch_weight * batch_entropy

    @staticmethod
    def backward(ctx, grad: Tensor):
        z, codebook, log_norm, sample_entropy, weight = ctx.saved_tensors
        temperature, floor, rows, cols = ctx.args
        need_z, need_codes = ctx.needs_input_grad[:2]
        # c_n = <w, p_n>, the codebook term's centre for row n
        centre = torch.zeros_like(log_norm)
        for t, c, logits in _logit_blocks(z, codebook, rows, cols,
                                          temperature):
            log_probs = logits.sub_(log_norm[t:t + rows, None]).clamp_(
                min=floor)
            centre[t:t + rows] += log_probs.exp_() @ weight[c:c + cols]
        # d loss / d logit_nj = p_nj (-(log p_nj + H_n) + w_j - c_n) / N
        offset = (sample_entropy + centre)[:, None]
        scale = grad / (z.shape[0] * temperature)
        grad_z = torch.zeros_like(z) if need_z else None
        grad_codes = torch.zeros_like(codebook) if need_codes else None
        for t, c, logits in _logit_blocks(z, codebook, rows, cols,
                                          temperature):
            log_probs = logits.sub_(log_norm[t:t + rows, None]).clamp_(
                min=floor)
            grad_logits = (weight[c:c + cols] - offset[t:t + rows]
                           - log_probs).mul_(log_probs.exp()).mul_(scale)
            if need_z:
                grad_z[t:t + rows].addmm_(grad_logits, codebook[c:c + cols])
            if need_codes:
                grad_codes[c:c + cols].addmm_(grad_logits.t(),
                                              z[t:t + rows])
        return grad_z, grad_codes, None, None, None, None, None


def _logit_blocks(z: Tensor, codebook: Tensor, rows: int, cols: int,
                  temperature: float):
    """``(t, c, z[t:t+rows] @ codebook[c:c+cols].T / temperature)``."""
    for t in range(0, z.shape[0], rows):
        for c in range(0, codebook.shape[0], cols):
            yield t, c, (z[t:t + rows] @ codebook[c:c + cols].t()).div_(
                temperature)


def blocked_entropy_loss(z: Tensor, codebook: Tensor, indices: Tensor,
                         temperature: float = 0.01,
                         batch_weight: float = 1.0, eps: float = 1e-5,
                         block_size: int = 2 ** 20) -> Tensor:
    """The released IBQ entropy loss (MAGVIT-v2's ``compute_entropy_loss``):
    mean per-token entropy minus ``batch_weight`` times the entropy of the
    mean of ``softmax(z E^T / temperature)`` (``-sum a log(a + eps)``),
    without the ``[N, K]`` matrix: forward and backward a ``[tokens, codes]``
    block at a time, gradients to ``z`` and ``E`` exact.

    Args:
        z (Tensor): ``[N, D]`` encoder outputs.
        codebook (Tensor): ``[K, D]`` codes.
        indices (Tensor): ``[N]`` the largest logit's code of each row.
        temperature (float): softmax temperature. Defaults to 0.01.
        batch_weight (float): weight of the entropy of the mean.
            Defaults to 1.0.
        eps (float): inside that entropy's log. Defaults to 1e-5.
        block_size (int): entries of one block. Defaults to ``2 ** 20``.

    Returns:
        Tensor: scalar loss.
    """
    with torch.autocast(z.device.type, enabled=False):
        z = z.to(codebook.dtype).contiguous()
        shift = (z.detach() * codebook.detach()[indices]).sum(1) / temperature
        return _EntropyTerms.apply(z, codebook, shift, temperature,
                                   batch_weight, eps, block_size)


def softmax_straight_through(z: Tensor, codebook: Tensor, indices: Tensor,
                             block_size: int = 2 ** 20) -> Tensor:
    """``m - sg(m)`` with ``m = softmax(z E^T) @ sg(E)`` (:func:`softmax_mean`
    shifted by the chosen codes' logits): zero in value, the gradient of
    IBQ's ``soft - soft.detach()`` through the codes. Runs in the codebook's
    dtype with autocast off."""
    with torch.autocast(z.device.type, enabled=False):
        z = z.to(codebook.dtype).contiguous()
        fixed = codebook.detach()
        shift = (z.detach() * fixed[indices]).sum(1)
        mean = softmax_mean(z, codebook, fixed, shift, block_size)
        return mean - mean.detach()


def index_backprop(z: Tensor, codebook: Tensor,
                   block_size: int = 2 ** 20) -> Tuple[Tensor, Tensor]:
    """IBQ's straight-through softmax without the ``[N, K]`` matrix.

    Returns ``E[i] + m - sg(m)`` with ``i = argmax_k <z, e_k>`` (the blocked
    search) and ``m`` as in :func:`softmax_straight_through`: the value is
    the chosen code, and the gradients equal those of the released
    ``einsum(hard - soft.detach() + soft, E)`` (the one-hot's to ``E``, the
    softmax's to ``z`` and ``E``).

    Args:
        z (Tensor): ``[N, D]`` encoder outputs.
        codebook (Tensor): ``[K, D]`` codes.
        block_size (int): entries of one ``[tokens, codes]`` block.
            Defaults to ``2 ** 20`` (4 MiB in float32).

    Returns:
        tuple[Tensor, LongTensor]: ``[N, D]`` quantized vectors and their
        ``[N]`` indices.
    """
    indices = nearest_code(z, codebook, inner_product=True)
    return (codebook[indices]
            + softmax_straight_through(z, codebook, indices, block_size),
            indices)


@QUANTIZERS.register_module()
class IndexBackpropQuantizer(BaseQuantizer):
    """IBQ: argmax of ``<z, e_k>``, gradient through the softmax over all codes.

    Losses (training only), as the released module computes them:

    - ``loss_ibq = mse(q, z)``, ``q`` the index-backpropagation output: its
      gradient reaches ``z`` directly and every code through the softmax;
    - ``loss_commit = mse(z, sg(e))`` and ``loss_codebook = beta * mse(e,
      sg(z))`` on the plain chosen code ``e`` (the release puts ``beta`` on
      the codebook term; ``beta_on_codebook=False`` moves it to the
      commitment term, VQ's weighting);
    - ``loss_entropy = entropy_weight * (mean per-token entropy -
      entropy_batch_weight * entropy of the mean)`` of ``softmax(z E^T / T)``
      (the release's ``compute_entropy_loss`` with
      ``sample_minimization_weight = 1``; its weight 0.05 sits in the
      released loss module, here in the quantizer), in blocks
      (:func:`blocked_entropy_loss`).

    Released facts kept: codes initialised ``N(0, 1)`` (``nn.Embedding``'s
    default), no normalisation (the release's ``cosine_similarity`` argument
    is unused), the softmax of the straight-through at temperature 1. The
    released argmax is taken over the softmax, fqzoo's over the logits:
    they differ only where two logits are within float rounding.

    Args:
        codebook_size (int): number of codes K. Defaults to 16384.
        embed_dim (int): code dimension D (channels of ``z``). Defaults to
            256 (the release's).
        beta (float): weight of the codebook (or commitment) term.
            Defaults to 0.25.
        beta_on_codebook (bool): ``beta`` weights ``loss_codebook`` (the
            release) rather than ``loss_commit``. Defaults to True.
        entropy_weight (float): weight of the entropy loss; 0 disables it.
            Defaults to 0.05 (the released configs').
        entropy_temperature (float): its softmax temperature. Defaults to
            0.01.
        entropy_batch_weight (float): the release's
            ``batch_maximization_weight``. Defaults to 1.0.
        block_size (int): entries of one ``[tokens, codes]`` block of
            :func:`index_backprop`. Defaults to ``2 ** 20``.
        stats_window (int): steps covered by :meth:`codebook_stats`.
            Defaults to 100.

    Example:
        >>> ibq = IndexBackpropQuantizer(codebook_size=512, embed_dim=8)
        >>> out = ibq(torch.randn(2, 8, 4, 4))
        >>> out.indices.shape
        torch.Size([2, 1, 4, 4])
    """

    def __init__(self, codebook_size: int = 16384, embed_dim: int = 256, *,
                 beta: float = 0.25, beta_on_codebook: bool = True,
                 entropy_weight: float = 0.05,
                 entropy_temperature: float = 0.01,
                 entropy_batch_weight: float = 1.0,
                 block_size: int = 2 ** 20, stats_window: int = 100) -> None:
        super().__init__()
        check_sizes(self, codebook_size=codebook_size, embed_dim=embed_dim,
                    block_size=block_size, stats_window=stats_window)
        self.codebook_size = codebook_size
        self.embed_dim = self.in_channels = embed_dim
        self.beta = beta
        self.beta_on_codebook = beta_on_codebook
        self.entropy_weight = entropy_weight
        self.entropy_temperature = entropy_temperature
        self.entropy_batch_weight = entropy_batch_weight
        self.block_size = block_size
        self.embedding = nn.Embedding(codebook_size, embed_dim)
        self.usage = CodeUsage(codebook_size, stats_window)

    def forward(self, z: Tensor) -> QuantizerOutput:
        b, _, h, w = z.shape
        flat = rearrange(z, 'b c h w -> (b h w) c')
        codebook = self.embedding.weight
        indices = nearest_code(flat, codebook, inner_product=True)
        # one lookup for the output and the losses: one [K, D] gradient
        code = self.embedding(indices)
        z_q = code
        if torch.is_grad_enabled() and (flat.requires_grad
                                        or codebook.requires_grad):
            z_q = code + softmax_straight_through(flat, codebook, indices,
                                                  self.block_size)
        losses = {}
        if self.training:
            losses = self._losses(flat, z_q, code, indices)
            self.usage.update(global_code_counts(indices, self.codebook_size))
        quantized = rearrange(z_q.to(z.dtype), '(b h w) c -> b c h w', b=b,
                              h=h, w=w)
        indices = rearrange(indices, '(b h w) -> b 1 h w', b=b, h=h, w=w)
        return QuantizerOutput(quantized, indices, losses,
                               codebook_metrics(indices, self.codebook_size))

    def _losses(self, flat: Tensor, z_q: Tensor, code: Tensor,
                indices: Tensor) -> dict:
        losses = {'loss_ibq': F.mse_loss(z_q, flat),
                  **commitment_losses(flat, code, self.beta,
                                      self.beta_on_codebook)}
        if self.entropy_weight > 0:
            losses['loss_entropy'] = self.entropy_weight * \
                blocked_entropy_loss(flat, self.embedding.weight, indices,
                                     self.entropy_temperature,
                                     self.entropy_batch_weight,
                                     block_size=self.block_size)
        return losses

    def embed_indices(self, indices: Tensor) -> Tensor:
        codes = self.embedding(indices[:, 0])
        return rearrange(codes, 'b h w c -> b c h w')
