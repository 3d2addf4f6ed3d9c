"""Sampling the next token: guidance, temperature, top-k, top-p.

Classifier-free guidance (Ho & Salimans, 2022) mixes the logits of the
conditional and the null-class pass, ``u + s (c - u)``; top-k keeps the k
most likely codes, top-p (Holtzman et al., 2020) the smallest set whose
probability exceeds p (the code that crosses p is kept). Every function
works on ``[B, V]`` logits; ``rng`` may be one ``torch.Generator`` or a
list of B of them (one per sample, so a sample's tokens depend only on its
own seed, whatever batch it is drawn in).

Two protocols (``PROTOCOLS``): fqzoo's filters the logits first and then
divides by the temperature (:func:`draw`), so top-p is a fraction of the
model's own distribution whatever the temperature; the released samplers
of LlamaGen (``autoregressive/models/generate.py``) and FQGAN's FAR
(``autoregressive/models/generate_dual.py``) divide first and filter the
sharpened distribution (:func:`draw_released`), which gives their tokens
for the same seed. docs/generators.md lists every difference.
"""
from typing import List, Sequence, Union

import torch
from torch import Tensor

Rngs = Union[None, torch.Generator, Sequence[torch.Generator]]
CFG_SCHEDULES = ('constant', 'linear')
PROTOCOLS = ('fqzoo', 'released')
# The released samplers divide by max(temperature, 1e-5): temperature 0 is
# a near-argmax that still draws from the random generator.
RELEASED_MIN_TEMPERATURE = 1e-5


def guide(cond: Tensor, uncond: Tensor, scale: float) -> Tensor:
    """Classifier-free guidance: ``uncond + scale * (cond - uncond)``;
    ``cond`` itself (bit for bit) at scale 1."""
    if scale == 1:
        return cond
    return uncond + (cond - uncond) * scale


def _check_filter(top_k: int, top_p: float) -> None:
    """Refuse a top-k below 0 or a top-p outside (0, 1]."""
    if not 0 < top_p <= 1:
        raise ValueError(f'top_p must be in (0, 1], got {top_p}')
    if top_k < 0:
        raise ValueError(f'top_k must be >= 0, got {top_k}')


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
    _check_filter(top_k, top_p)
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
    return multinomial(torch.softmax(logits / temperature, dim=-1), rng)


def multinomial(probs: Tensor, rng: Rngs = None) -> Tensor:
    """One index per row of ``probs [B, V]``: one ``torch.multinomial``
    call over the batch with one random generator (as the released
    samplers draw), or row i with ``rng[i]``."""
    if isinstance(rng, (list, tuple)):
        if len(rng) != len(probs):
            raise ValueError(f'{len(rng)} random generators for '
                             f'{len(probs)} samples')
        return torch.cat([torch.multinomial(p[None], 1, generator=g)[0]
                          for p, g in zip(probs, rng)])
    return torch.multinomial(probs, 1, generator=rng)[:, 0]


def filter_logits_released(logits: Tensor, top_k: int = 0,
                           top_p: float = 1.0) -> Tensor:
    """The released samplers' top-k / top-p filter (Hugging Face's
    ``top_k_top_p_filtering`` with one code kept at least).

    It keeps the same codes as :func:`filter_logits` in exact arithmetic;
    the nucleus is tested on the cumulative sum shifted by one position
    (``cumsum[i - 1] > top_p`` drops code i) instead of ``cumsum[i] -
    p[i]``, the release's rounding, so a code on the edge of ``top_p`` is
    kept or dropped as the release does.

    Args:
        logits (Tensor): ``[B, V]``.
        top_k (int): 0 keeps all. Defaults to 0.
        top_p (float): 1 keeps all. Defaults to 1.

    Returns:
        Tensor: a new tensor.
    """
    _check_filter(top_k, top_p)
    logits = logits.clone()
    if top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]),
                         dim=-1).values[..., -1:]
        logits[logits < kth] = float('-inf')
    if top_p < 1:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cumulative = torch.cumsum(torch.softmax(sorted_logits, dim=-1),
                                  dim=-1)
        drop_sorted = torch.zeros_like(cumulative, dtype=torch.bool)
        drop_sorted[..., 1:] = cumulative[..., :-1] > top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits[drop] = float('-inf')
    return logits


def draw_released(logits: Tensor, temperature: float = 1.0, top_k: int = 0,
                  top_p: float = 1.0, rng: Rngs = None) -> Tensor:
    """Sample one index per row as the released samplers do: divide by
    ``max(temperature, 1e-5)``, then filter, softmax and
    ``torch.multinomial`` (temperature 0 is therefore a near-argmax that
    still draws from ``rng``)."""
    if temperature < 0:
        raise ValueError(f'temperature must be >= 0, got {temperature}')
    _check_filter(top_k, top_p)
    logits = logits.float() / max(temperature, RELEASED_MIN_TEMPERATURE)
    if top_k > 0 or top_p < 1:
        logits = filter_logits_released(logits, top_k, top_p)
    return multinomial(torch.softmax(logits, dim=-1), rng)


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


def guided_at(step: int, cfg_interval: float = -1) -> bool:
    """Whether position ``step`` is guided under LlamaGen's
    ``cfg_interval``: every position when it is -1 (or less), else the
    first ``cfg_interval + 2`` (the release counts its decode steps after
    the first position, which is always guided, and stops guiding once the
    step index exceeds ``cfg_interval``)."""
    return not (cfg_interval > -1 and step - 1 > cfg_interval)


def released_guidance(scales: Sequence[float]) -> bool:
    """The released samplers' guidance gate: guide when the first
    sub-token's scale exceeds 1 (not when any scale differs from 1).

    Raises:
        ValueError: some sub-tokens above 1 and some not; the released FAR
            sampler then splits unguided logits or stacks guided ones
            (a wrong pairing or a shape error), so no released tokens exist
            to match.
    """
    above = [float(s) > 1 for s in scales]
    if any(above) and not all(above):
        raise ValueError(f'cfg_scale {list(scales)}: under the released '
                         'protocol every sub-token\'s scale must be above 1 '
                         '(guided) or none (the released FAR sampler guides '
                         'the batch by cfg_scale[0] and each sub-token by '
                         'its own scale, and fails on a mix)')
    return above[0]


def rngs_for(seeds: Sequence[int],
             device: Union[str, torch.device] = 'cpu'
             ) -> List[torch.Generator]:
    """One seeded random generator per sample."""
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
