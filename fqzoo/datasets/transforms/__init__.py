"""Data transforms: fqzoo's own plus mmcv's.

Importing ``mmcv.transforms`` registers mmcv's transforms
(``LoadImageFromFile``, ``Resize``, ``CenterCrop``, ``RandomFlip``,
``RandomResize`` ...) in MMEngine's root TRANSFORMS, so they resolve through
fqzoo's child TRANSFORMS registry too.
"""
import mmcv.transforms  # noqa: F401

from .formatting import PackTokenizerInputs
from .processing import RandomCrop, ResizeShortEdge

__all__ = ['PackTokenizerInputs', 'RandomCrop', 'ResizeShortEdge']
