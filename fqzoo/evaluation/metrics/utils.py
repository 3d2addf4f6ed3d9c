"""Helpers shared by the metrics: batching per-sample outputs, image ranges,
and the checks that make bad input fail with a message naming it."""
from typing import Sequence

import torch
from torch import Tensor

from fqzoo.utils.images import to_uint8

__all__ = ['check_code_sample', 'check_image_pair', 'require_results',
           'stack_field', 'to_unit_range', 'to_uint8']


def stack_field(data_samples: Sequence[dict], key: str) -> Tensor:
    """Stack one field of the per-sample dicts of a val/test step.

    Raises:
        KeyError: if a sample has no ``key`` (the message lists its keys).
        ValueError: if the samples' ``key`` tensors differ in shape.
    """
    for i, sample in enumerate(data_samples):
        if key not in sample:
            raise KeyError(f'data sample {i} has no {key!r} field (it has '
                           f'{sorted(sample)})')
    shapes = {tuple(sample[key].shape) for sample in data_samples}
    if len(shapes) > 1:
        raise ValueError(f'the samples\' {key!r} tensors differ in shape: '
                         f'{sorted(shapes)}')
    return torch.stack([sample[key] for sample in data_samples])


def check_image_pair(metric: str, recon: Tensor, inputs: Tensor,
                     tol: float = 1e-4) -> None:
    """``recon`` and ``inputs`` are float ``[B, C, H, W]`` batches of the
    same shape with values in [-1, 1] (``tol`` of slack).

    Raises:
        ValueError: naming ``metric``, the field and what is wrong.
    """
    if recon.shape != inputs.shape:
        raise ValueError(f'{metric}: recon has shape {tuple(recon.shape)[1:]} '
                         f'but inputs {tuple(inputs.shape)[1:]}; they must '
                         'be the same [C, H, W]')
    for name, images in (('recon', recon), ('inputs', inputs)):
        if images.dim() != 4 or not images.is_floating_point():
            raise ValueError(f'{metric}: {name} must be float [C, H, W] '
                             f'images per sample, got {images.dtype} '
                             f'{tuple(images.shape)[1:]}')
        low, high = images.min().item(), images.max().item()
        if low < -1 - tol or high > 1 + tol:
            raise ValueError(f'{metric}: {name} must be images in [-1, 1], '
                             f'got values in [{low:g}, {high:g}]')


def check_code_sample(metric: str, sample: dict, index: int) -> None:
    """A sample's ``indices`` are an integer ``[G, h, w]`` tensor with every
    value in ``[0, codebook_size)``.

    Raises:
        KeyError: if ``indices`` or ``codebook_size`` is missing.
        ValueError: naming ``metric``, the sample and what is wrong.
    """
    for key in ('indices', 'codebook_size'):
        if key not in sample:
            raise KeyError(f'{metric}: data sample {index} has no {key!r} '
                           f'field (it has {sorted(sample)})')
    indices, size = sample['indices'], int(sample['codebook_size'])
    if indices.dim() != 3 or indices.is_floating_point():
        raise ValueError(f'{metric}: data sample {index} indices must be an '
                         f'integer [G, h, w] tensor, got {indices.dtype} '
                         f'{tuple(indices.shape)}')
    low, high = int(indices.min()), int(indices.max())
    if low < 0 or high >= size:
        raise ValueError(f'{metric}: data sample {index} has indices in '
                         f'[{low}, {high}], outside [0, {size}) for '
                         f'codebook_size {size}')


def require_results(metric: str, results: Sequence) -> None:
    """Fail, naming ``metric``, when it has nothing to compute from.

    Raises:
        ValueError: if ``results`` is empty (``process`` never received a
            sample: an empty evaluation set or a misconfigured loop).
    """
    if len(results) == 0:
        raise ValueError(f'{metric} has no results to compute: process() '
                         'received no samples (empty evaluation dataset?)')


def to_unit_range(images: Tensor) -> Tensor:
    """[-1, 1] float images to [0, 1], clamped, float64 (for exact sums)."""
    return ((images.double() + 1) / 2).clamp(0, 1)
