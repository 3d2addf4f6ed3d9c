"""Reconstructions per sub-codebook, quantizer-agnostic.

For a tokenizer whose quantizer has several branches (FQ: one quantized map
per sub-codebook), :func:`branch_reconstructions` decodes each branch alone:
branch ``g``'s quantized map is kept and every other branch is replaced by
its mean over the image's positions (``'mean'``) or by zeros (``'zero'``),
as in the FQGAN paper's per-sub-codebook figure (Bai et al. 2024). It reads
only ``quantize(images).branches`` and ``decode_quantized``, so it works for
any quantizer; a one-branch quantizer gives no per-branch images.
"""
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from PIL import Image
from torch import Tensor

from fqzoo.visualization import image_grid

SIZE_KEYS = ('crop_size', 'image_size', 'img_size', 'size')


def config_resolution(cfg: Config) -> Optional[int]:
    """The test images' side a config implies: ``image_size`` at the top
    level, else a size key of the test dataset or of its pipeline's last
    transform that has one; None when there is none."""
    if isinstance(cfg.get('image_size'), int):
        return cfg.image_size
    dataset = (cfg.get('test_dataloader') or {}).get('dataset', {})
    candidates = [dataset] + list(reversed(dataset.get('pipeline', [])))
    for entry in candidates:
        if not isinstance(entry, dict):
            continue
        for key in SIZE_KEYS:
            value = entry.get(key)
            if isinstance(value, int):
                return value
            if isinstance(value, (tuple, list)) and len(set(value)) == 1:
                return int(value[0])
    return None


def load_image(path: Union[str, Path], size: int) -> Tensor:
    """An image file as ``[3, size, size]`` in [-1, 1]: the shorter side
    resized to ``size`` (bicubic, antialiased), then centre-cropped."""
    # torchvision imports torch._dynamo: only where it is used
    from torchvision.transforms.functional import (
        center_crop,
        pil_to_tensor,
        resize,
    )

    image = pil_to_tensor(Image.open(path).convert('RGB')).float() / 127.5 - 1
    image = resize(image, size, interpolation=3, antialias=True)
    return center_crop(image, [size, size]).clamp(-1, 1)


def replace_branch(branch: Tensor, ablate: str) -> Tensor:
    """A branch's stand-in when another branch is decoded alone."""
    if ablate == 'mean':
        return branch.mean(dim=(2, 3), keepdim=True).expand_as(branch)
    if ablate == 'zero':
        return torch.zeros_like(branch)
    raise ValueError(f"ablate must be 'mean' or 'zero', got {ablate!r}")


@torch.no_grad()
def branch_reconstructions(tokenizer, images: Tensor,
                           ablate: str = 'mean') -> List[Tensor]:
    """Full reconstructions and, per branch, the decode of that branch alone.

    Args:
        tokenizer (ImageTokenizer): any quantizer.
        images (Tensor): ``[B, 3, H, W]`` in [-1, 1].
        ablate (str): stand-in for the other branches, ``'mean'`` (their
            mean over positions) or ``'zero'``. Defaults to 'mean'.

    Returns:
        list[Tensor]: ``[reconstruction, branch_0, ..., branch_{k-1}]``
        (only the reconstruction for one branch), each ``[B, 3, H, W]``.
    """
    out = tokenizer.quantize(images)
    recons = [tokenizer.decode_quantized(out.quantized)]
    branches = list(out.branches)
    if len(branches) < 2:
        return recons
    if sum(b.shape[1] for b in branches) != out.quantized.shape[1]:
        raise ValueError(
            f'{type(tokenizer.quantizer).__name__}: its branches do not '
            'split the quantized channels, so they cannot be decoded alone')
    for g in range(len(branches)):
        parts = [b if i == g else replace_branch(b, ablate)
                 for i, b in enumerate(branches)]
        recons.append(tokenizer.decode_quantized(torch.cat(parts, dim=1)))
    return recons


def strip_grid(columns: Sequence[Tensor], *, scale: int = 1,
               padding: int = 2) -> np.ndarray:
    """Rows of images side by side: row ``i`` is ``columns[c][i]`` for every
    column ``c``, as a ``uint8`` RGB array ``[rows * (s*H + p) + p,
    cols * (s*W + p) + p, 3]``."""
    cells = torch.stack(list(columns), dim=1).flatten(0, 1)
    return image_grid(cells, len(columns), padding=padding, scale=scale)


def reconstruct_files(tokenizer, paths: Sequence[Union[str, Path]],
                      out_dir: Union[str, Path], *, size: int,
                      ablate: str = 'mean', scale: int = 1,
                      batch_size: int = 16) -> List[Path]:
    """Per image a strip ``original | reconstruction | branch_0 | ...``
    as ``out_dir/<name>.png``, and all strips in ``out_dir/grid.png``.

    A stem already taken (by an earlier input, a renamed one or the grid)
    gets the first free ``<name>_<n>``, ``n`` counting from the image's
    index, so no strip is written over another.

    Returns:
        list[Path]: the strips, in input order, then the grid.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = next(tokenizer.parameters()).device
    rows, written, names = [], [], {'grid'}
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        images = torch.stack([load_image(p, size) for p in chunk]).to(device)
        columns = [images] + branch_reconstructions(tokenizer, images, ablate)
        for i, path in enumerate(chunk):
            row = [column[i:i + 1] for column in columns]
            rows.append(row)
            stem = name = Path(path).stem
            index = start + i
            while name in names:
                name = f'{stem}_{index}'
                index += 1
            names.add(name)
            target = out / f'{name}.png'
            Image.fromarray(strip_grid(row, scale=scale)).save(target)
            written.append(target)
    grid = [torch.cat([row[c] for row in rows]) for c in range(len(rows[0]))]
    Image.fromarray(strip_grid(grid, scale=scale)).save(out / 'grid.png')
    return written + [out / 'grid.png']
