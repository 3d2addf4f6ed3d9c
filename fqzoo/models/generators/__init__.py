"""Token generators (registry ``GENERATORS``): the composed AR / FAR model,
its backbone, input embedding and multi-token heads, one file each."""
from .ar_generator import AutoregressiveGenerator, CodeDataPreprocessor
from .backbone import LlamaGenBackbone
from .heads import (
    FactorizedARHead,
    MultiTokenHead,
    ParallelLinearHead,
    ParallelMLPHead,
)
from .token_embedding import FactorizedTokenEmbedding

__all__ = ['AutoregressiveGenerator', 'CodeDataPreprocessor',
           'LlamaGenBackbone', 'FactorizedTokenEmbedding', 'MultiTokenHead',
           'ParallelLinearHead', 'ParallelMLPHead', 'FactorizedARHead']
