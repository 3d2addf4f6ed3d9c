"""Pretrained backbones shared by losses, teachers and metrics."""
from .efficientnet_lite0 import (
    build_efficientnet_lite0,
    efficientnet_lite0_normalize,
    efficientnet_lite0_stage_features,
)

__all__ = ['build_efficientnet_lite0', 'efficientnet_lite0_normalize',
           'efficientnet_lite0_stage_features']
