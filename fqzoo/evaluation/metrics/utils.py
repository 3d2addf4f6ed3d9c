"""Helpers shared by the metrics: batching per-sample outputs, image ranges."""
from typing import Sequence

import torch
from torch import Tensor


def stack_field(data_samples: Sequence[dict], key: str) -> Tensor:
    """Stack one field of the per-sample dicts of a val/test step."""
    return torch.stack([sample[key] for sample in data_samples])


def to_unit_range(images: Tensor) -> Tensor:
    """[-1, 1] float images to [0, 1], clamped, float64 (for exact sums)."""
    return ((images.double() + 1) / 2).clamp(0, 1)


def to_uint8(images: Tensor) -> Tensor:
    """[-1, 1] float images to uint8 [0, 255], the input torch-fidelity expects."""
    return ((images.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
