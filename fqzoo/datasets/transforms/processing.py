"""Geometric transforms mmcv lacks: shorter-edge resize and random crop.

Together with mmcv's ``RandomFlip`` and ``CenterCrop`` they give LlamaGen's
tokenizer pipelines (Sun et al. 2024, "Autoregressive Model Beats Diffusion"):
train resizes the shorter side to 1.1 x the crop and takes a random crop,
val resizes the shorter side to the crop size and takes the centre.
"""
from typing import Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from fqzoo.registry import TRANSFORMS


@TRANSFORMS.register_module()
class ResizeShortEdge(BaseTransform):
    """Resize ``results['img']`` so that its shorter side is ``size``,
    keeping the aspect ratio.

    Args:
        size (int): length of the shorter side after resizing.
        interpolation (str): mmcv interpolation name. Defaults to 'bicubic'.
        backend (str): 'pillow' (antialiased when downscaling, like
            LlamaGen's PIL pipeline) or 'cv2' (faster, aliases when
            downscaling), see ``mmcv.imresize``. Defaults to 'pillow'.

    Example:
        >>> dict(type='ResizeShortEdge', size=256)
    """

    def __init__(self, size: int, interpolation: str = 'bicubic',
                 backend: str = 'pillow') -> None:
        if size < 1:
            raise ValueError(f'size must be >= 1, got {size}')
        self.size = size
        self.interpolation = interpolation
        self.backend = backend

    def transform(self, results: dict) -> dict:
        img = results['img']
        height, width = img.shape[:2]
        scale = self.size / min(height, width)
        new_w = max(self.size, round(width * scale))
        new_h = max(self.size, round(height * scale))
        results['img'] = mmcv.imresize(img, (new_w, new_h),
                                       interpolation=self.interpolation,
                                       backend=self.backend)
        results['img_shape'] = results['img'].shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(size={self.size}, '
                f"interpolation='{self.interpolation}', "
                f"backend='{self.backend}')")


@TRANSFORMS.register_module()
class RandomCrop(BaseTransform):
    """Crop a random ``crop_size`` window out of ``results['img']``.

    The offset is drawn from NumPy's global generator, which MMEngine seeds
    per worker (``randomness.seed``), like mmcv's ``RandomFlip``.

    Args:
        crop_size (int | tuple[int, int]): crop side, or (height, width).

    Example:
        >>> dict(type='RandomCrop', crop_size=256)
    """

    def __init__(self, crop_size: Union[int, Tuple[int, int]]) -> None:
        if isinstance(crop_size, int):
            crop_size = (crop_size, crop_size)
        self.crop_size: Tuple[int, int] = tuple(crop_size)

    @cache_randomness
    def _offset(self, height: int, width: int) -> Tuple[int, int]:
        crop_h, crop_w = self.crop_size
        return (np.random.randint(height - crop_h + 1),
                np.random.randint(width - crop_w + 1))

    def transform(self, results: dict) -> dict:
        img = results['img']
        height, width = img.shape[:2]
        crop_h, crop_w = self.crop_size
        if height < crop_h or width < crop_w:
            raise ValueError(f'image of size {height}x{width} is smaller than '
                             f'the crop {crop_h}x{crop_w}; resize it first')
        top, left = self._offset(height, width)
        results['img'] = img[top:top + crop_h, left:left + crop_w]
        results['img_shape'] = (crop_h, crop_w)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(crop_size={self.crop_size})'
