from .base import (
                   BaseQuantizer,
                   CodeUsage,
                   QuantizerOutput,
                   check_quantizer_attributes,
                   check_quantizer_output,
                   check_sizes,
                   codebook_metrics,
                   rotate_to,
)
from .bsq import BSQ
from .fq import FactorizedQuantizer
from .fsq import FSQ
from .ibq import IndexBackpropQuantizer, index_backprop
from .lfq import LookupFreeQuantizer
from .rvq import ResidualVQ
from .search import entropy_loss, nearest_code
from .simvq import SimVQ
from .vq import VectorQuantizer

__all__ = ['BaseQuantizer', 'CodeUsage', 'QuantizerOutput',
           'check_quantizer_attributes', 'check_quantizer_output',
           'check_sizes',
           'codebook_metrics', 'BSQ',
           'FactorizedQuantizer', 'FSQ', 'IndexBackpropQuantizer',
           'LookupFreeQuantizer', 'ResidualVQ', 'SimVQ', 'entropy_loss',
           'index_backprop', 'nearest_code', 'rotate_to', 'VectorQuantizer']
