"""Packing a loaded image into fqzoo's sample format."""
import numpy as np
import torch
from mmcv.transforms import BaseTransform

from fqzoo.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackTokenizerInputs(BaseTransform):
    """Turn ``results['img']`` into the sample every fqzoo model reads.

    The output is ``dict(inputs=FloatTensor[3, H, W], data_samples=dict(
    label=int, index=int))`` with RGB values in [-1, 1]. ``label`` comes
    from ``results['gt_label']`` and ``index`` from ``results['sample_idx']``
    (set by MMEngine's ``BaseDataset``); each is -1 when absent. Gray images
    (``HxW`` or ``HxWx1``) are replicated to three channels, and a fourth
    (alpha) channel is dropped.

    Args:
        channel_order (str): channel order of ``results['img']``, 'bgr'
            (what mmcv's ``LoadImageFromFile`` gives) or 'rgb'.
            Defaults to 'bgr'.

    Example:
        >>> pipeline = [dict(type='LoadImageFromFile'),
        ...             dict(type='PackTokenizerInputs')]
    """

    def __init__(self, channel_order: str = 'bgr') -> None:
        if channel_order not in ('bgr', 'rgb'):
            raise ValueError(
                f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
        self.channel_order = channel_order

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.dtype != np.uint8:
            raise TypeError(f'PackTokenizerInputs expects a uint8 image, got '
                            f'{img.dtype}')
        if img.ndim == 2:
            img = img[..., None]
        if img.shape[2] == 1:
            img = np.repeat(img, 3, axis=2)
        img = img[..., :3]
        if self.channel_order == 'bgr':
            img = img[..., ::-1]
        chw = np.ascontiguousarray(img.transpose(2, 0, 1))
        inputs = torch.from_numpy(chw).float().div_(127.5).sub_(1.0)
        return dict(inputs=inputs,
                    data_samples=dict(label=int(results.get('gt_label', -1)),
                                      index=int(results.get('sample_idx', -1))))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(channel_order='{self.channel_order}')"
