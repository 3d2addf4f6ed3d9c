"""Nearest-code search and the codebook entropy loss, blocked over tokens and
codes so that peak extra memory does not grow with the codebook size."""
import torch
import torch.nn.functional as F
from torch import Tensor


@torch.no_grad()
def nearest_code(z: Tensor, codebook: Tensor, token_chunk: int = 4096,
                 code_chunk: int = 16384) -> Tensor:
    """Index of the nearest code (squared Euclidean) for each row of ``z``.

    Args:
        z (Tensor): ``[N, D]`` vectors.
        codebook (Tensor): ``[K, D]`` codes.
        token_chunk (int): tokens per block. Defaults to 4096.
        code_chunk (int): codes per block. Defaults to 16384.

    Returns:
        LongTensor: ``[N]`` indices, equal to the exhaustive argmin.
    """
    z = z.to(codebook.dtype)
    code_sq = codebook.pow(2).sum(1)
    out = torch.empty(z.shape[0], dtype=torch.long, device=z.device)
    for t in range(0, z.shape[0], token_chunk):
        zt = z[t:t + token_chunk]
        best_val = torch.full((zt.shape[0],), float('inf'), device=z.device,
                              dtype=codebook.dtype)
        best_idx = torch.zeros(zt.shape[0], dtype=torch.long, device=z.device)
        for c in range(0, codebook.shape[0], code_chunk):
            # ||z||^2 is constant per row and does not change the argmin.
            dist = torch.addmm(code_sq[c:c + code_chunk], zt,
                               codebook[c:c + code_chunk].t(), alpha=-2.0)
            val, idx = dist.min(dim=1)
            better = val < best_val
            best_val = torch.where(better, val, best_val)
            best_idx = torch.where(better, idx + c, best_idx)
        out[t:t + token_chunk] = best_idx
    return out


def entropy_loss(z: Tensor, codebook: Tensor, temperature: float = 0.01,
                 l2_norm: bool = False) -> Tensor:
    """Per-sample entropy minus codebook entropy of soft assignments.

    Low per-sample entropy makes each token confident; high entropy of the
    batch-averaged assignment spreads tokens over the codebook (MAGVIT-v2,
    LlamaGen). Affinity is the negative squared distance (the dot product
    for l2-normalised vectors, up to a constant).
    """
    if l2_norm:
        logits = z @ codebook.t()
    else:
        logits = 2 * z @ codebook.t() - codebook.pow(2).sum(1)
    logits = logits / temperature
    probs = F.softmax(logits, dim=-1)
    log_probs = F.log_softmax(logits, dim=-1)
    sample_entropy = -(probs * log_probs).sum(-1).mean()
    avg_probs = probs.mean(0)
    codebook_entropy = -(avg_probs * torch.log(avg_probs + 1e-5)).sum()
    return sample_entropy - codebook_entropy
