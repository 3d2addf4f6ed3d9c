"""Whole-photo fidelity: does a tokenizer trained on small crops work on a
whole photo?

CPU-scale tokenizers train on 32 px crops. A user then hands them a whole
photo; :func:`whole_photo_fidelity` measures what comes back. Each held-out
photo (by default the two the photo-patch datasets never train on) is
centre-cropped to a square, resized to ``size`` (PIL bicubic, antialiased),
encoded to indices and decoded, and compared with the original:

- ``psnr``: PSNR in dB on [0, 1] images, the reconstruction clamped to
  [-1, 1] and both rounded to 8 bits, as a saved PNG would be;
- ``colour_shift``: the largest per-channel difference of the mean colour,
  in 0-255 levels (a pink cast on a white saucer shows here, not in PSNR);
- with ``tile``: the same two numbers when the photo is cut into
  ``tile x tile`` crops encoded one by one (the size the model trained at);
  the gap between whole and tiled says how much the trunk depends on the
  input's size.
"""
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from fqzoo.datasets.photo_patches import load_photo

HELD_OUT_PHOTOS = ('coffee', 'grace_hopper')


def square_photo(name: str, size: int) -> Tensor:
    """A bundled photo's centre square resized to ``size x size``, as a
    ``[3, size, size]`` float tensor in [-1, 1]."""
    photo = load_photo(name)
    h, w = photo.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = Image.fromarray(photo[top:top + side, left:left + side])
    array = np.asarray(square.resize((size, size), Image.Resampling.BICUBIC))
    return torch.from_numpy(array.transpose(2, 0, 1).copy()).float() / 127.5 - 1


def to_levels(image: Tensor) -> Tensor:
    """Images in [-1, 1] to 8-bit levels 0..255 (as float), clamped."""
    return ((image.clamp(-1, 1) + 1) * 127.5).round()


def tiled(fn, images: Tensor, tile: int) -> Tensor:
    """``fn`` applied to each ``tile x tile`` crop of ``[B, C, H, W]``
    images separately, the outputs put back in place."""
    b, c, h, w = images.shape
    if h % tile or w % tile:
        raise ValueError(f'image size {h}x{w} is not a multiple of the tile '
                         f'size {tile}')
    tiles = images.unfold(2, tile, tile).unfold(3, tile, tile)
    rows, cols = tiles.shape[2], tiles.shape[3]
    tiles = tiles.permute(0, 2, 3, 1, 4, 5).reshape(-1, c, tile, tile)
    out = torch.cat([fn(t) for t in tiles.split(64)])
    out = out.reshape(b, rows, cols, c, tile, tile).permute(0, 3, 1, 4, 2, 5)
    return out.reshape(b, c, h, w)


def fidelity(recon: Tensor, original: Tensor) -> Dict[str, float]:
    """PSNR (dB) and largest per-channel mean-colour difference (0-255
    levels) of one ``[3, H, W]`` reconstruction in [-1, 1]."""
    a, b = to_levels(recon).double(), to_levels(original).double()
    mse = (a - b).pow(2).mean().item() / 255 ** 2
    psnr = 10 * np.log10(1 / max(mse, 1e-10))
    shift = (a.mean((1, 2)) - b.mean((1, 2))).abs().max().item()
    return dict(psnr=float(psnr), colour_shift=float(shift))


@torch.no_grad()
def whole_photo_fidelity(tokenizer, names: Sequence[str] = HELD_OUT_PHOTOS,
                         size: int = 256, tile: Optional[int] = None,
                         images: Optional[Dict[str, list]] = None
                         ) -> Dict[str, float]:
    """Encode-decode the held-out photos whole (and tiled) and score them.

    Args:
        tokenizer: an :class:`~fqzoo.models.ImageTokenizer` (any object with
            ``encode`` and ``decode``).
        names (Sequence[str]): bundled photos to use. Defaults to
            :data:`HELD_OUT_PHOTOS`.
        size (int): side the photos are resized to. Defaults to 256.
        tile (int, optional): also encode each photo as ``tile x tile``
            crops and report those scores under ``tiled_*``.

    Returns:
        dict: ``whole/<name>/psnr``, ``whole/<name>/colour_shift``, the means
        over the photos ``whole/psnr`` and ``whole/colour_shift`` (the mean
        of the per-photo largest shifts), the same under ``tiled/`` with
        ``tile``, and the reconstructions are not kept.
    """
    was_training = tokenizer.training
    tokenizer.eval()
    device = next(tokenizer.parameters()).device

    def roundtrip(x: Tensor) -> Tensor:
        return tokenizer.decode(tokenizer.encode(x))

    modes = {'whole': roundtrip}
    if tile is not None:
        modes['tiled'] = lambda x: tiled(roundtrip, x, tile)
    scores: Dict[str, float] = {}
    for mode, fn in modes.items():
        for name in names:
            image = square_photo(name, size)[None].to(device)
            recon = fn(image)[0].cpu()
            for key, value in fidelity(recon, image[0].cpu()).items():
                scores[f'{mode}/{name}/{key}'] = value
            if images is not None:
                if mode == 'whole':
                    images.setdefault('original', []).append(image[0].cpu())
                images.setdefault(mode, []).append(recon.clamp(-1, 1))
        for key in ('psnr', 'colour_shift'):
            scores[f'{mode}/{key}'] = float(np.mean(
                [scores[f'{mode}/{n}/{key}'] for n in names]))
    tokenizer.train(was_training)
    return scores
