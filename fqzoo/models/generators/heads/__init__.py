"""Multi-token prediction heads (registry ``GENERATORS``)."""
from .ar_head import FactorizedARHead
from .base import MultiTokenHead
from .linear_head import ParallelLinearHead
from .mlp_head import ParallelMLPHead

__all__ = ['MultiTokenHead', 'ParallelLinearHead', 'ParallelMLPHead',
           'FactorizedARHead']
