"""Frozen semantic teachers (TEACHERS) and the feature-prediction head."""
from .base import FrozenTeacher, MissingWeightsError, load_state_dict_file
from .clip import CLIPTeacher
from .dinov2 import DINOv2Teacher
from .efficientnet import EfficientNetTeacher
from .heads import FeaturePredictionHead

__all__ = ['CLIPTeacher', 'DINOv2Teacher', 'EfficientNetTeacher',
           'FeaturePredictionHead', 'FrozenTeacher', 'MissingWeightsError',
           'load_state_dict_file']
