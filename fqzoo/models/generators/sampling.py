"""Sampling the next token: guidance, temperature, top-k, top-p.

Classifier-free guidance (Ho & Salimans, 2022) mixes the logits of the
conditional and the null-class pass, ``u + s (c - u)``; top-k keeps the k
most likely codes, top-p (Holtzman et al., 2020) the smallest set whose
probability exceeds p (the code that crosses p is kept). Every function
works on ``[B, V]`` logits; ``rng`` may be one ``torch.Generator`` or a
list of B of them (one per sample, so a sample's tokens depend only on its
own seed, whatever batch it is drawn in).
"""
from typing import List, Sequence, Union

import torch
from torch import Tensor

Rngs = Union[None, torch.Generator, Sequence[torch.Generator]]
CFG_SCHEDULES = ('constant', 'linear')


def guide(cond: Tensor, uncond: Tensor, scale: float) -> Tensor:
    """Classifier-free guidance: ``uncond + scale * (cond - uncond)``;
    ``cond`` itself (bit for bit) at scale 1."""
    if scale == 1:
        return cond
    return uncond + (cond - uncond) * scale


def filter_logits(logits: Tensor, top_k: int = 0,
                  top_p: float = 1.0) -> Tensor:
    """Logits with everything outside the top-k / top-p set at ``-inf``.

    Args:
        logits (Tensor): ``[B, V]``.
        top_k (int): keep the k largest (ties at the k-th value are kept);
            0 keeps all. Defaults to 0.
        top_p (float): keep the most likely codes until their probability
            exceeds ``top_p`` (at least one); 1 keeps all. Defaults to 1.

    Returns:
        Tensor: a new tensor.
    """
    if not 0 < top_p <= 1:
        raise ValueError(f'top_p must be in (0, 1], got {top_p}')
    if top_k < 0:
        raise ValueError(f'top_k must be >= 0, got {top_k}')
    logits = logits.clone()
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits[logits < kth] = float('-inf')
    if top_p < 1:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        before = torch.cumsum(probs, dim=-1) - probs
        drop_sorted = before > top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits[drop] = float('-inf')
    return logits


def draw(logits: Tensor, temperature: float = 1.0, top_k: int = 0,
         top_p: float = 1.0, rng: Rngs = None) -> Tensor:
    """Sample one index per row of ``logits [B, V]``.

    ``temperature`` 0 takes the argmax (after filtering). With a list of
    random generators, row i is drawn with ``rng[i]``.
    """
    if temperature < 0:
        raise ValueError(f'temperature must be >= 0, got {temperature}')
    logits = filter_logits(logits.float(), top_k, top_p)
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    if isinstance(rng, (list, tuple)):
        if len(rng) != len(probs):
            raise ValueError(f'{len(rng)} random generators for '
                             f'{len(probs)} samples')
        return torch.cat([torch.multinomial(p[None], 1, generator=g)[0]
                          for p, g in zip(probs, rng)])
    return torch.multinomial(probs, 1, generator=rng)[:, 0]


def per_token(value, num_tokens: int, name: str) -> List:
    """``value`` for each of the ``num_tokens`` sub-tokens: a scalar is
    repeated, a sequence must have one entry per sub-token."""
    if isinstance(value, (list, tuple)):
        if len(value) != num_tokens:
            raise ValueError(f'{name} has {len(value)} values, the generator '
                             f'predicts {num_tokens} sub-tokens')
        return list(value)
    return [value] * num_tokens


def cfg_scale_at(scale: float, step: int, num_steps: int,
                 schedule: str = 'constant') -> float:
    """The guidance scale at position ``step`` of ``num_steps``.

    ``'constant'``: ``scale`` everywhere. ``'linear'``: rises from 1 at the
    first position to ``scale`` at the last (guidance grows as the image
    takes shape, as in MUSE/VAR-style schedules).
    """
    if schedule == 'constant':
        return scale
    if schedule == 'linear':
        frac = step / max(num_steps - 1, 1)
        return 1 + (scale - 1) * frac
    raise ValueError(f"cfg_schedule must be 'constant' or 'linear', "
                     f'got {schedule!r}')


def rngs_for(seeds: Sequence[int],
             device: Union[str, torch.device] = 'cpu'
             ) -> List[torch.Generator]:
    """One seeded random generator per sample."""
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
