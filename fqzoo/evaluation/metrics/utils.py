"""Helpers shared by the metrics: batching per-sample outputs, image ranges."""
from typing import Sequence

import torch
from torch import Tensor

from fqzoo.utils.images import to_uint8

__all__ = ['stack_field', 'to_unit_range', 'to_uint8']


def stack_field(data_samples: Sequence[dict], key: str) -> Tensor:
    """Stack one field of the per-sample dicts of a val/test step."""
    return torch.stack([sample[key] for sample in data_samples])


def to_unit_range(images: Tensor) -> Tensor:
    """[-1, 1] float images to [0, 1], clamped, float64 (for exact sums)."""
    return ((images.double() + 1) / 2).clamp(0, 1)
