"""A tokenizer's tokens and reconstruction computed by hand from its modules.

The reference the inference API (``encode``, ``decode``, ``reconstruct``) is
checked against, so that those tests do not compare the code with itself:
the encoder trunk, each branch's head and 1x1 projection, each branch's
codes worked out in float64 from the quantizer's definition with plain
tensor ops (none of the quantizer's own methods is called, only its
parameters and settings are read), then the post-quant conv and the
decoder. Quantizers written out here:

- ``VectorQuantizer``: a direct ``torch.cdist`` argmin (over l2-normalised
  vectors when it normalises);
- ``FSQ``: per channel ``round(tanh(z + shift) * half - offset)`` with the
  paper's half width ``(L - 1)(1 - eps) / 2`` (an even ``L`` shifted by a
  half step), code ``value / (L // 2)``, index the mixed-radix number of
  the digits ``value + L // 2``, first channel least significant;
- ``LookupFreeQuantizer``: the sign bits of the channels, ``+-scale``, the
  index their binary number, first channel most significant;
- ``BSQ``: the sign bits of the l2-normalised vector, ``+-1/sqrt(D)``, the
  index their binary number, first channel most significant;
- ``ResidualVQ``: each level on what the previous levels left (``z`` minus
  the sum of their codes), the code the sum of the levels' codes;
- ``SimVQ``: a cdist argmin over the projected codebook ``E W^T + b``;
- ``IndexBackpropQuantizer``: the argmax of the logits ``z E^T``;
- ``FactorizedQuantizer`` of any of these: each sub-quantizer on its own
  channel group, indices concatenated.

Any other quantizer raises ``NotImplementedError`` rather than pass
unchecked.

Near-ties: the tokenizer picks in float32, the reference in float64, so a
position whose two best codes are closer than float32 can tell apart may
go either way (the unseeded test_configs inputs met one in CI). Given the
tokenizer's own indices (``ties_to``), the reference keeps the tokenizer's
pick exactly where that code's float64 squared distance (or logit) is
within :data:`TIE_TOL` of the best, relative to the magnitudes involved;
anywhere else a different pick still fails the comparison.
"""
import math
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn


def sub_quantizers(tokenizer: nn.Module) -> List[nn.Module]:
    """The sub-quantizers, one per branch, in branch order."""
    quantizer = tokenizer.quantizer
    return list(getattr(quantizer, 'subs', [quantizer]))


TIE_TOL = 1e-5


def _keep_ties(scores: Tensor, best: Tensor, scale: Tensor,
               picks: Optional[Tensor]) -> Tensor:
    """``best`` [N], except where ``picks`` [N, 1] scores within
    ``TIE_TOL * scale`` of it (``scores`` [N, K], lower is better)."""
    if picks is None:
        return best
    gap = scores.gather(1, picks)[:, 0] - scores.gather(1, best[:, None])[:, 0]
    return torch.where(gap <= TIE_TOL * scale, picks[:, 0], best)


def _nearest(rows: Tensor, codes: Tensor,
             picks: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    dist2 = torch.cdist(rows, codes).square()
    scale = rows.square().sum(1) + codes.square().sum(1).max()
    indices = _keep_ties(dist2, dist2.argmin(dim=1), scale, picks)
    return codes[indices], indices[:, None]


def _vq(rows: Tensor, vq: nn.Module,
        picks: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    codes = vq.embedding.weight.detach().double()
    if vq.l2_norm:
        rows = rows / rows.norm(dim=1, keepdim=True)
        codes = codes / codes.norm(dim=1, keepdim=True)
    return _nearest(rows, codes, picks)


def _fsq(rows: Tensor, fsq: nn.Module,
         picks: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    levels = [int(level) for level in fsq.levels]
    codes, digits = [], []
    for c, level in enumerate(levels):
        half = (level - 1) * (1 - fsq.eps) / 2
        offset = 0.5 if level % 2 == 0 else 0.0
        shift = math.atanh(offset / half)
        value = torch.round(torch.tanh(rows[:, c] + shift) * half - offset)
        codes.append(value / (level // 2))
        digits.append(value.long() + level // 2)
    index = torch.zeros_like(digits[0])
    for level, digit in zip(reversed(levels), reversed(digits)):
        index = index * level + digit  # Horner: the first channel last
    return torch.stack(codes, dim=1), index[:, None]


def _lfq(rows: Tensor, lfq: nn.Module,
         picks: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    index = torch.zeros(rows.shape[0], dtype=torch.long)
    for c in range(rows.shape[1]):  # the first channel most significant
        index = index * 2 + (rows[:, c] > 0).long()
    codes = torch.where(rows > 0, lfq.scale, -lfq.scale).double()
    return codes, index[:, None]


def _bsq(rows: Tensor, bsq: nn.Module,
         picks: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    dim = rows.shape[1]
    unit = rows / rows.norm(dim=1, keepdim=True)
    bits = (unit > 0).long()
    index = (bits * 2 ** torch.arange(dim - 1, -1, -1)).sum(1)
    codes = (bits * 2 - 1).double() / math.sqrt(dim)
    return codes, index[:, None]


def _rvq(rows: Tensor, rvq: nn.Module,
         picks: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    levels = ([rvq.codebooks[0]] * rvq.depth if rvq.shared_codebook
              else list(rvq.codebooks))
    level_picks = _split_picks(picks, [lv.num_codebooks for lv in levels])
    total, indices = torch.zeros_like(rows), []
    for level, pick in zip(levels, level_picks):
        code, index = codes_by_hand(rows - total, level, pick)
        total = total + code
        indices.append(index)
    return total, torch.cat(indices, dim=1)


def _simvq(rows: Tensor, simvq: nn.Module,
           picks: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    proj = simvq.embedding_proj
    codes = (simvq.embedding.weight.detach().double()
             @ proj.weight.detach().double().t())
    if proj.bias is not None:
        codes = codes + proj.bias.detach().double()
    return _nearest(rows, codes, picks)


def _ibq(rows: Tensor, ibq: nn.Module,
         picks: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    codes = ibq.embedding.weight.detach().double()
    neg_logits = -(rows @ codes.t())
    scale = rows.norm(dim=1) * codes.norm(dim=1).max()
    indices = _keep_ties(neg_logits, neg_logits.argmin(dim=1), scale, picks)
    return codes[indices], indices[:, None]


def _fq(rows: Tensor, fq: nn.Module,
        picks: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    parts = rows.split([sub.in_channels for sub in fq.subs], dim=1)
    sub_picks = _split_picks(picks, [sub.num_codebooks for sub in fq.subs])
    outs = [codes_by_hand(part, sub, pick)
            for part, sub, pick in zip(parts, fq.subs, sub_picks)]
    return (torch.cat([code for code, _ in outs], dim=1),
            torch.cat([index for _, index in outs], dim=1))


BY_HAND = {'VectorQuantizer': _vq, 'FSQ': _fsq,
           'LookupFreeQuantizer': _lfq, 'BSQ': _bsq, 'ResidualVQ': _rvq,
           'SimVQ': _simvq, 'IndexBackpropQuantizer': _ibq,
           'FactorizedQuantizer': _fq}


def _split_picks(picks: Optional[Tensor],
                 widths: List[int]) -> List[Optional[Tensor]]:
    if picks is None:
        return [None] * len(widths)
    return list(picks.split(widths, dim=1))


def codes_by_hand(rows: Tensor, quantizer: nn.Module,
                  picks: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Codes and indices of ``quantizer`` for the rows of ``rows``.

    Args:
        rows (Tensor): ``[N, C]`` latent vectors (computed in float64).
        quantizer (nn.Module): one of the quantizers of :data:`BY_HAND`.
        picks (Tensor, optional): ``[N, G]`` the tokenizer's own indices,
            kept where they are a near-tie (module docstring).

    Returns:
        tuple: the codes ``[N, C]`` (float64) and the indices ``[N, G]``.
    """
    name = type(quantizer).__name__
    if name not in BY_HAND:
        raise NotImplementedError(f'no by-hand reference for {name}')
    return BY_HAND[name](rows.double(), quantizer, picks)


def quantize_by_hand(z: Tensor, quantizer: nn.Module,
                     ties_to: Optional[Tensor] = None
                     ) -> Tuple[Tensor, Tensor]:
    """The quantized map ``[B, C, H, W]`` (float32) and the indices
    ``[B, G, H, W]`` of one branch's latent ``z [B, C, H, W]``
    (``ties_to``: the tokenizer's indices ``[B, G, H, W]``, kept at
    near-ties)."""
    b, c, h, w = z.shape
    picks = (None if ties_to is None
             else ties_to.permute(0, 2, 3, 1).reshape(b * h * w, -1))
    codes, indices = codes_by_hand(z.permute(0, 2, 3, 1).reshape(-1, c),
                                   quantizer, picks)
    return (codes.reshape(b, h, w, c).permute(0, 3, 1, 2).float(),
            indices.reshape(b, h, w, -1).permute(0, 3, 1, 2))


def nearest_by_cdist(z: Tensor, vq: nn.Module) -> Tuple[Tensor, Tensor]:
    """Nearest codes of a ``VectorQuantizer`` ``vq`` for every position of
    ``z [B, C, H, W]``: the quantized map (float32) and indices
    ``[B, H, W]``."""
    quantized, indices = quantize_by_hand(z, vq)
    return quantized, indices[:, 0]


@torch.no_grad()
def reconstruct_by_hand(tokenizer: nn.Module, images: Tensor,
                        ties_to: Optional[Tensor] = None
                        ) -> Tuple[Tensor, Tensor]:
    """Run the tokenizer's modules one by one.

    Args:
        tokenizer (nn.Module): an ``ImageTokenizer`` in eval mode.
        images (Tensor): ``[B, 3, H, W]`` in [-1, 1].
        ties_to (Tensor, optional): the tokenizer's own indices
            ``[B, G, h, w]``, kept where they are a near-tie (module
            docstring).

    Returns:
        tuple: the reconstruction ``[B, 3, H, W]`` and the indices
        ``[B, G, h, w]``.
    """
    feats = tokenizer.encoder(images)
    subs = sub_quantizers(tokenizer)
    branch_ties = _split_picks(ties_to, [sub.num_codebooks for sub in subs])
    quantized, indices = [], []
    for head, conv, sub, ties in zip(tokenizer.heads, tokenizer.quant_convs,
                                     subs, branch_ties):
        q, idx = quantize_by_hand(conv(head(feats)), sub, ties)
        quantized.append(q)
        indices.append(idx)
    recon = tokenizer.decoder(
        tokenizer.post_quant_conv(torch.cat(quantized, dim=1)))
    return recon, torch.cat(indices, dim=1)
