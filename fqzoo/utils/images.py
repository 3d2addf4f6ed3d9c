"""Image value conversions shared by metrics, sampling and visualization."""
import torch
from torch import Tensor


def to_uint8(images: Tensor) -> Tensor:
    """[-1, 1] float images to uint8 [0, 255], the input torch-fidelity
    expects."""
    return ((images.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
