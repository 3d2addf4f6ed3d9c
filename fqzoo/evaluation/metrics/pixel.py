"""Pixel-space fidelity metrics: PSNR and SSIM, on images mapped to [0, 1].

SSIM: Wang et al., "Image Quality Assessment: From Error Visibility to
Structural Similarity", IEEE TIP 2004.
"""
import math
from abc import abstractmethod
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from torch import Tensor

from fqzoo.registry import METRICS

from .utils import check_image_pair, require_results, stack_field, to_unit_range


def psnr(pred: Tensor, target: Tensor, max_db: float = 100.0) -> Tensor:
    """Per-image PSNR (dB) of ``[B, C, H, W]`` images in [0, 1].

    Identical images would give infinity; the value is capped at ``max_db``.

    Raises:
        ValueError: if ``pred`` and ``target`` are not ``[B, C, H, W]`` of
            the same shape.
    """
    _check_same_batch('psnr', pred, target)
    mse = (pred - target).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(1 / mse.clamp_min(10 ** (-max_db / 10))))


def _check_same_batch(name: str, pred: Tensor, target: Tensor) -> None:
    if pred.dim() != 4 or pred.shape != target.shape:
        raise ValueError(f'{name}: pred and target must be [B, C, H, W] of '
                         f'the same shape, got {tuple(pred.shape)} and '
                         f'{tuple(target.shape)}')


def _gaussian_window(size: int, sigma: float, dtype: torch.dtype) -> Tensor:
    coords = torch.arange(size, dtype=dtype) - (size - 1) / 2
    kernel = torch.exp(-coords.pow(2) / (2 * sigma ** 2))
    return kernel / kernel.sum()


def ssim(pred: Tensor, target: Tensor, win_size: int = 11,
         sigma: float = 1.5) -> Tensor:
    """Per-image SSIM of ``[B, C, H, W]`` images in [0, 1].

    Matches ``skimage.metrics.structural_similarity(..., channel_axis=-1,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    data_range=1)``: a Gaussian window, the SSIM map averaged over the
    positions where the window fits (skimage crops the border it pads),
    then over channels. Images must be at least ``win_size`` pixels a side.

    Raises:
        ValueError: if ``pred`` and ``target`` are not ``[B, C, H, W]`` of
            the same shape, or are smaller than ``win_size`` a side.
    """
    _check_same_batch('ssim', pred, target)
    if min(pred.shape[-2:]) < win_size:
        raise ValueError(f'ssim: images of {pred.shape[-2]}x{pred.shape[-1]} '
                         f'pixels are smaller than the {win_size}x{win_size} '
                         'window')
    channels = pred.shape[1]
    kernel_1d = _gaussian_window(win_size, sigma, pred.dtype).to(pred.device)
    kernel = torch.outer(kernel_1d, kernel_1d).expand(channels, 1, -1, -1)

    def blur(x: Tensor) -> Tensor:
        return F.conv2d(x, kernel, groups=channels)

    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mu_p, mu_t = blur(pred), blur(target)
    var_p = blur(pred * pred) - mu_p ** 2
    var_t = blur(target * target) - mu_t ** 2
    cov = blur(pred * target) - mu_p * mu_t
    ssim_map = ((2 * mu_p * mu_t + c1) * (2 * cov + c2) /
                ((mu_p ** 2 + mu_t ** 2 + c1) * (var_p + var_t + c2)))
    return ssim_map.mean((2, 3)).mean(1)


class _PairwiseImageMetric(BaseMetric):
    """Average over images of a per-image score of ``recon`` vs ``inputs``;
    subclasses set ``name`` and implement :meth:`score`."""

    name: str

    def __init__(self, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)

    @abstractmethod
    def score(self, pred: Tensor, target: Tensor) -> Tensor:
        """Per-image score of images in [0, 1], shape ``[B]``."""

    def process(self, data_batch: object,
                data_samples: Sequence[dict]) -> None:
        """Score each reconstruction against its input."""
        recon = stack_field(data_samples, 'recon').cpu()
        inputs = stack_field(data_samples, 'inputs').cpu()
        check_image_pair(type(self).__name__, recon, inputs)
        self.results.extend(
            self.score(to_unit_range(recon), to_unit_range(inputs)).tolist())

    def compute_metrics(self, results: List[float]) -> dict:
        """Mean over the evaluation set."""
        require_results(type(self).__name__, results)
        return {self.name: math.fsum(results) / len(results)}


@METRICS.register_module()
class PSNR(_PairwiseImageMetric):
    """PSNR (dB) of reconstructions, per image on [0, 1] then averaged.

    Logs ``psnr``. Identical images are capped at 100 dB.

    >>> metric = PSNR()
    """

    name = 'psnr'

    def score(self, pred: Tensor, target: Tensor) -> Tensor:
        """Per-image PSNR."""
        return psnr(pred, target)


@METRICS.register_module()
class SSIM(_PairwiseImageMetric):
    """SSIM of reconstructions (Gaussian window 11, sigma 1.5, per channel).

    Logs ``ssim``. Matches scikit-image's ``structural_similarity`` with
    ``gaussian_weights=True, use_sample_covariance=False, data_range=1``.

    >>> metric = SSIM()
    """

    name = 'ssim'

    def score(self, pred: Tensor, target: Tensor) -> Tensor:
        """Per-image SSIM."""
        return ssim(pred, target)
