"""Nearest-code search and the codebook entropy loss, blocked over tokens and
codes so that peak extra memory does not grow with the codebook size.

With a small codebook (``K`` up to ``plain_max / token_chunk``: 4096 codes
by default, the CPU-scale operating point) the search is plain: one
``addmm`` and one ``argmin`` per ``plain_max / K`` tokens (at most 64 MiB of
float32 distances), the fastest there is at that size, where the many small
operations of the blocked search cost more than they save. A larger
codebook is searched in blocks, one ``[token_chunk, code_chunk]`` distance
block alive at a time. Per block it
takes only the row minimum (``amin``, a vectorised reduction many times
faster than ``min``/``argmin`` with indices), remembers which code block won
each token, and recovers the index with one ``argmin`` per token over its
winning block only.

The entropy loss (MAGVIT-v2, Yu et al. 2023; LlamaGen, Sun et al. 2024) is
computed over a chunk of tokens at a time under
:func:`torch.utils.checkpoint.checkpoint`, so at most one
``[chunk, K]`` probability slice (``2^22`` entries by default) lives in
memory, forward or backward.
"""
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint


def _code_distances(z: Tensor, codebook: Tensor, code_sq: Tensor) -> Tensor:
    """``||e||^2 - 2 z.e`` (the squared distance minus the per-row constant
    ``||z||^2``, which does not change the argmin)."""
    return torch.addmm(code_sq, z, codebook.t(), alpha=-2.0)


@torch.no_grad()
def nearest_code(z: Tensor, codebook: Tensor, token_chunk: int = 4096,
                 code_chunk: int = 256, plain_max: int = 1 << 24, *,
                 inner_product: bool = False) -> Tensor:
    """Index of the nearest code (squared Euclidean) for each row of ``z``.

    Args:
        z (Tensor): ``[N, D]`` vectors.
        codebook (Tensor): ``[K, D]`` codes.
        token_chunk (int): tokens per block. Defaults to 4096.
        code_chunk (int): codes per block. Defaults to 256 (a 4 MiB float32
            distance block with the default ``token_chunk``).
        plain_max (int): most distances computed at once by the plain
            search, which runs when ``token_chunk * K`` is at most this
            (``K <= 4096`` with the defaults). Defaults to ``2 ** 24``.
        inner_product (bool): find the code of largest dot product
            ``<z, e>`` instead (the argmax of IBQ's logits): the same search
            with ``||e||^2`` taken as 0. Defaults to False.

    Returns:
        LongTensor: ``[N]`` indices of the exhaustive argmin (the first code
        on ties).
    """
    # addmm copies a non-contiguous input on every call: copy once here.
    z = z.to(codebook.dtype).contiguous()
    codebook = codebook.contiguous()
    if inner_product:
        code_sq = codebook.new_zeros(codebook.shape[0])
    else:
        code_sq = codebook.pow(2).sum(1)
    num_codes = codebook.shape[0]
    if token_chunk * num_codes <= plain_max:
        rows = max(1, plain_max // num_codes)
        return torch.cat([
            _code_distances(z[t:t + rows], codebook, code_sq).argmin(1)
            for t in range(0, z.shape[0], rows)])
    best_block = torch.cat([
        _best_blocks(z[t:t + token_chunk], codebook, code_sq, code_chunk)
        for t in range(0, z.shape[0], token_chunk)])
    return _argmin_in_blocks(z, codebook, code_sq, best_block, token_chunk,
                             code_chunk)


def _best_blocks(z: Tensor, codebook: Tensor, code_sq: Tensor,
                 code_chunk: int, group: int = 64) -> Tensor:
    """Which code block holds each row's nearest code (first on ties).

    Block minima are written into a ``[group, N]`` buffer and reduced once
    per ``group`` blocks: two ops per block keeps the count of parallel
    regions (costly on a loaded machine) low.
    """
    starts = list(range(0, codebook.shape[0], code_chunk))
    minima = z.new_empty(min(group, len(starts)), z.shape[0])
    best_val = torch.full((z.shape[0],), float('inf'), device=z.device,
                          dtype=z.dtype)
    best_block = torch.zeros(z.shape[0], dtype=torch.long, device=z.device)
    for first in range(0, len(starts), group):
        members = starts[first:first + group]
        for row, c in enumerate(members):
            torch.amin(_code_distances(z, codebook[c:c + code_chunk],
                                       code_sq[c:c + code_chunk]),
                       dim=1, out=minima[row])
        val, block = minima[:len(members)].min(0)
        better = val < best_val
        best_val = torch.where(better, val, best_val)
        best_block = torch.where(better, block + first, best_block)
    return best_block


def _argmin_in_blocks(z: Tensor, codebook: Tensor, code_sq: Tensor,
                      best_block: Tensor, token_chunk: int,
                      code_chunk: int) -> Tensor:
    """Argmin of each row of ``z`` within its winning code block, one block
    (and at most ``token_chunk`` rows) at a time."""
    idx = torch.empty_like(best_block)
    for block in best_block.unique().tolist():
        c = block * code_chunk
        members = (best_block == block).nonzero().squeeze(1)
        for rows in members.split(token_chunk):
            dist = _code_distances(z[rows], codebook[c:c + code_chunk],
                                   code_sq[c:c + code_chunk])
            idx[rows] = dist.argmin(1) + c
    return idx


@torch.no_grad()
def nearest_code_naive(z: Tensor, codebook: Tensor) -> Tensor:
    """The common full-matrix search (taming-transformers / LlamaGen):
    materialises the ``[N, K]`` distance matrix. Reference and benchmark
    baseline only."""
    dist = (z.pow(2).sum(1, keepdim=True) + codebook.pow(2).sum(1)
            - 2 * z @ codebook.t())
    return dist.argmin(1)


def _affinity(z: Tensor, codebook: Tensor, l2_norm: bool) -> Tensor:
    if l2_norm:
        return z @ codebook.t()
    return 2 * z @ codebook.t() - codebook.pow(2).sum(1)


def _log_probs(z: Tensor, codebook: Tensor, temperature: float,
               l2_norm: bool) -> Tensor:
    """Log-softmax of the affinities with every probability kept a normal
    float: logits more than ``log(1 / (K * tiny)) - 1`` below the row
    maximum are raised to that bound. Underflowing ``exp`` (common at low
    temperature) is 10-30x slower on CPU; the probabilities this changes are
    below ``e * K * tiny``."""
    logits = _affinity(z, codebook, l2_norm) / temperature
    margin = math.log(torch.finfo(logits.dtype).tiny) + 1 + math.log(
        logits.shape[-1])
    logits = torch.maximum(logits, logits.amax(-1, keepdim=True) + margin)
    return F.log_softmax(logits, dim=-1)


def _chunk_terms(z: Tensor, codebook: Tensor, entropy_grad: Tensor,
                 temperature: float, l2_norm: bool) -> Tensor:
    """Sum over the chunk of the per-sample entropy plus ``<w, p>``, where
    ``w = d(-gamma * H(avg_p)) / d(avg_p)`` is held fixed: the gradient of
    ``<w, p>`` is the chain rule of the codebook entropy through this
    chunk's probabilities."""
    log_probs = _log_probs(z, codebook, temperature, l2_norm)
    probs = log_probs.exp()
    sample_entropy = -(probs * log_probs).sum()
    return sample_entropy + (probs.sum(0) * entropy_grad).sum()


@torch.no_grad()
def _average_probs(z: Tensor, codebook: Tensor, temperature: float,
                   l2_norm: bool, chunk_size: int) -> Tensor:
    total = torch.zeros(codebook.shape[0], device=z.device, dtype=z.dtype)
    for t in range(0, z.shape[0], chunk_size):
        total += _log_probs(z[t:t + chunk_size], codebook, temperature,
                            l2_norm).exp().sum(0)
    return total / z.shape[0]


def entropy_loss(z: Tensor, codebook: Tensor, temperature: float = 0.01,
                 l2_norm: bool = False, *, codebook_weight: float = 1.0,
                 chunk_size: Optional[int] = None,
                 eps: float = 1e-5) -> Tensor:
    """Per-sample entropy minus codebook entropy of soft assignments.

    Low per-sample entropy makes each token confident; high entropy of the
    batch-averaged assignment spreads tokens over the codebook (MAGVIT-v2,
    LlamaGen). Affinity is the negative squared distance (the dot product
    for l2-normalised vectors, up to a constant).

    Computed a chunk of tokens at a time: a first no-grad pass gets the
    average assignment ``a``; a second pass, checkpointed per chunk, sums
    the per-sample entropies and ``<dH/da, p>`` (same gradient as the
    codebook entropy). The value is exact, the gradient equals the
    unchunked one, and memory is ``O(chunk_size * K)``.

    Args:
        z (Tensor): ``[N, D]`` vectors.
        codebook (Tensor): ``[K, D]`` codes.
        temperature (float): softmax temperature. Defaults to 0.01.
        l2_norm (bool): dot-product affinity. Defaults to False.
        codebook_weight (float): weight of the codebook entropy (MAGVIT-v2's
            diversity gamma). Defaults to 1.0.
        chunk_size (int, optional): tokens per chunk. Defaults to
            ``max(1, 2^22 // K)``.
        eps (float): inside the log of the codebook entropy. Defaults to 1e-5.

    Returns:
        Tensor: scalar loss.
    """
    if chunk_size is None:
        chunk_size = max(1, 2 ** 22 // codebook.shape[0])
    avg = _average_probs(z.detach(), codebook.detach(), temperature, l2_norm,
                         chunk_size)
    log_avg = torch.log(avg + eps)
    codebook_entropy = -(avg * log_avg).sum()
    # d(-w * H)/da = w * (log(a + eps) + a / (a + eps))
    weight = codebook_weight * (log_avg + avg / (avg + eps))
    surrogate = sum(
        checkpoint(_chunk_terms, z[t:t + chunk_size], codebook, weight,
                   temperature, l2_norm, use_reentrant=False)
        for t in range(0, z.shape[0], chunk_size)) / z.shape[0]
    # surrogate = mean sample entropy + <w, a>; swap <w, a> for -w * H(a).
    correction = (-codebook_weight * codebook_entropy
                  - (weight * avg).sum()).detach()
    return surrogate + correction
