"""Image grids (originals | reconstructions, samples) as uint8 RGB arrays
and PNG files."""
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image
from torch import Tensor


def reconstruction_grid(originals: Tensor, recons: Tensor,
                        pairs_per_row: int = 4, padding: int = 2,
                        scale: int = 1) -> np.ndarray:
    """Side-by-side pairs (original, reconstruction) in a grid.

    Args:
        originals (Tensor): ``[N, 3, H, W]`` images in [-1, 1].
        recons (Tensor): reconstructions, same shape.
        pairs_per_row (int): pairs on one grid row. Defaults to 4.
        padding (int): pixels between images. Defaults to 2.
        scale (int): nearest-neighbour upscaling of each image, so small
            patches stay visible. Defaults to 1.

    Returns:
        np.ndarray: ``uint8`` RGB image ``[rows * (s*H + p) + p,
        cols * (s*W + p) + p, 3]`` (``s = scale``) with
        ``cols = 2 * min(N, pairs_per_row)`` and
        ``rows = ceil(N / pairs_per_row)``.

    Example:
        >>> x = torch.zeros(3, 3, 16, 16)
        >>> reconstruction_grid(x, x).shape
        (20, 110, 3)
    """
    if originals.shape != recons.shape or originals.dim() != 4:
        raise ValueError('originals and recons must both be [N, 3, H, W], got '
                         f'{tuple(originals.shape)} and {tuple(recons.shape)}')
    pairs = torch.stack([originals, recons], dim=1).flatten(0, 1)
    return image_grid(pairs, 2 * min(len(originals), pairs_per_row),
                      padding=padding, scale=scale)


def image_grid(images: Tensor, ncol: int, padding: int = 2,
               scale: int = 1) -> np.ndarray:
    """Images in rows of ``ncol`` on a white background.

    Args:
        images (Tensor): ``[N, 3, H, W]``, floats in [-1, 1] or uint8.
        ncol (int): images per row.
        padding (int): pixels between images. Defaults to 2.
        scale (int): nearest-neighbour upscaling of each image.
            Defaults to 1.

    Returns:
        np.ndarray: ``uint8`` RGB image ``[rows * (s*H + p) + p,
        ncol' * (s*W + p) + p, 3]`` with ``ncol' = min(N, ncol)`` and
        ``rows = ceil(N / ncol)``.

    Example:
        >>> image_grid(torch.zeros(5, 3, 8, 8, dtype=torch.uint8), 4).shape
        (22, 42, 3)
    """
    if images.dim() != 4:
        raise ValueError(f'images must be [N, 3, H, W], got '
                         f'{tuple(images.shape)}')
    images = images.detach().cpu()
    if images.dtype == torch.uint8:
        pixels = images.float()
    else:
        pixels = (images.float().clamp(-1, 1) + 1) * 127.5
    if scale > 1:
        pixels = pixels.repeat_interleave(scale, 2).repeat_interleave(scale, 3)
    from torchvision.utils import make_grid  # torchvision imports torch._dynamo

    grid = make_grid(pixels, nrow=ncol, padding=padding, pad_value=255)
    if len(pixels) == 1:  # make_grid returns a lone image unpadded
        grid = torch.nn.functional.pad(grid, [padding] * 4, value=255)
    return grid.round().to(torch.uint8).permute(1, 2, 0).numpy()


def save_png(image: np.ndarray, path: Union[str, Path]) -> Path:
    """Write a ``uint8`` RGB array as PNG, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path
