"""Perceptual distance between reconstructions and inputs, from a loss."""
import math
from typing import List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric

from fqzoo.models.backbones.efficientnet_lite0 import (
    efficientnet_lite0_requirement,
)
from fqzoo.registry import METRICS, MODELS
from fqzoo.utils.preflight import Requirement

from .utils import check_image_pair, require_results, stack_field


@METRICS.register_module()
class PerceptualDistance(BaseMetric):
    """Mean perceptual distance of reconstructions to inputs.

    The distance is a perceptual loss module built from ``loss``; the logged
    key is the loss's ``metric_name`` unless ``name`` is given:
    ``effnet_perceptual`` for the default (offline EfficientNet-Lite0, not
    LPIPS), ``lpips`` for ``dict(type='LPIPSLoss', vgg_checkpoint=...)``.

    Args:
        loss (dict): Config of a perceptual loss from ``MODELS`` taking
            ``reduction``. Defaults to
            ``dict(type='EfficientNetPerceptualLoss')``.
        name (str, optional): Metric key. Defaults to the loss's
            ``metric_name``.
        device (str, optional): Where the network runs; None runs it where
            the samples are. Defaults to None.
        collect_device (str): Defaults to 'cpu'.
        prefix (str, optional): Defaults to None.

    >>> metric = PerceptualDistance()
    """

    def __init__(self, loss: Optional[dict] = None,
                 name: Optional[str] = None, device: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        loss = dict(loss or dict(type='EfficientNetPerceptualLoss'))
        loss['reduction'] = 'none'
        self.loss = MODELS.build(loss)
        self.name = name or self.loss.metric_name
        self.device = device

    @classmethod
    def external_requirements(cls, args: dict) -> List[Requirement]:
        """Those of the default loss when ``loss`` is unset (a configured
        ``loss`` declares its own)."""
        if args['loss'] is not None:
            return []
        return [efficientnet_lite0_requirement(None, arg='loss')]

    @torch.no_grad()
    def process(self, data_batch: object,
                data_samples: Sequence[dict]) -> None:
        """Per-sample distances, stored on CPU."""
        recon = stack_field(data_samples, 'recon')
        inputs = stack_field(data_samples, 'inputs')
        check_image_pair(type(self).__name__, recon, inputs)
        device = self.device or recon.device
        self.loss.to(device)
        dist = self.loss(recon.to(device), inputs.to(device))
        self.results.extend(dist.cpu().tolist())

    def compute_metrics(self, results: List[float]) -> dict:
        """Mean over the evaluation set."""
        require_results(type(self).__name__, results)
        return {self.name: math.fsum(results) / len(results)}
