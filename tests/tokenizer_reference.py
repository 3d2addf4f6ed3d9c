"""A tokenizer's tokens and reconstruction computed by hand from its modules.

The reference the inference API (``encode``, ``decode``, ``reconstruct``) is
checked against, so that those tests do not compare the code with itself:
the encoder trunk, each branch's head and 1x1 projection, the nearest code
of each sub-codebook found by a direct ``torch.cdist`` argmin in float64
(over l2-normalised vectors when the sub-quantizer normalises), then the
post-quant conv and the decoder. Works for a ``VectorQuantizer`` and for a
``FactorizedQuantizer`` of them.
"""
from typing import List, Tuple

import torch
from torch import Tensor, nn


def sub_quantizers(tokenizer: nn.Module) -> List[nn.Module]:
    """The VQ sub-quantizers, one per branch, in branch order."""
    quantizer = tokenizer.quantizer
    return list(getattr(quantizer, 'subs', [quantizer]))


def nearest_by_cdist(z: Tensor, vq: nn.Module) -> Tuple[Tensor, Tensor]:
    """Nearest codes of ``vq``'s codebook for every position of ``z``.

    Args:
        z (Tensor): ``[B, C, H, W]`` one branch's latent.
        vq (nn.Module): a ``VectorQuantizer`` (its ``embedding.weight`` and
            ``l2_norm`` are read).

    Returns:
        tuple: the quantized map ``[B, C, H, W]`` (float32) and the indices
        ``[B, H, W]``.
    """
    b, c, h, w = z.shape
    flat = z.permute(0, 2, 3, 1).reshape(-1, c).double()
    codes = vq.embedding.weight.detach().double()
    if vq.l2_norm:
        flat = flat / flat.norm(dim=1, keepdim=True)
        codes = codes / codes.norm(dim=1, keepdim=True)
    indices = torch.cdist(flat, codes).argmin(dim=1)
    quantized = codes[indices].reshape(b, h, w, c).permute(0, 3, 1, 2)
    return quantized.float(), indices.reshape(b, h, w)


@torch.no_grad()
def reconstruct_by_hand(tokenizer: nn.Module,
                        images: Tensor) -> Tuple[Tensor, Tensor]:
    """Run the tokenizer's modules one by one.

    Args:
        tokenizer (nn.Module): an ``ImageTokenizer`` in eval mode.
        images (Tensor): ``[B, 3, H, W]`` in [-1, 1].

    Returns:
        tuple: the reconstruction ``[B, 3, H, W]`` and the indices
        ``[B, G, h, w]``.
    """
    feats = tokenizer.encoder(images)
    quantized, indices = [], []
    for head, conv, vq in zip(tokenizer.heads, tokenizer.quant_convs,
                              sub_quantizers(tokenizer)):
        q, idx = nearest_by_cdist(conv(head(feats)), vq)
        quantized.append(q)
        indices.append(idx)
    recon = tokenizer.decoder(
        tokenizer.post_quant_conv(torch.cat(quantized, dim=1)))
    return recon, torch.stack(indices, dim=1)
