from .branch_heads import (
                           ConvBranchHead,
                           TransformerBlock,
                           TransformerBranchHead,
                           VQGANTrunk,
)
from .vqgan import VQGANEncoder

__all__ = ['ConvBranchHead', 'TransformerBlock', 'TransformerBranchHead',
           'VQGANEncoder', 'VQGANTrunk']
