"""Originals | reconstructions grids as uint8 RGB arrays and PNG files."""
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision.utils import make_grid


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
    pairs = (pairs.detach().float().cpu().clamp(-1, 1) + 1) * 127.5
    if scale > 1:
        pairs = pairs.repeat_interleave(scale, 2).repeat_interleave(scale, 3)
    cols = 2 * min(len(originals), pairs_per_row)
    grid = make_grid(pairs, nrow=cols, padding=padding, pad_value=255)
    return grid.round().to(torch.uint8).permute(1, 2, 0).numpy()


def save_png(image: np.ndarray, path: Union[str, Path]) -> Path:
    """Write a ``uint8`` RGB array as PNG, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path
