from .base import (
                   BaseQuantizer,
                   CodeUsage,
                   QuantizerOutput,
                   check_quantizer_attributes,
                   check_quantizer_output,
                   codebook_metrics,
)
from .bsq import BSQ
from .fq import FactorizedQuantizer
from .fsq import FSQ
from .lfq import LookupFreeQuantizer
from .rvq import ResidualVQ
from .search import entropy_loss, nearest_code
from .vq import VectorQuantizer

__all__ = ['BaseQuantizer', 'CodeUsage', 'QuantizerOutput',
           'check_quantizer_attributes', 'check_quantizer_output',
           'codebook_metrics', 'BSQ',
           'FactorizedQuantizer', 'FSQ', 'LookupFreeQuantizer', 'ResidualVQ',
           'entropy_loss', 'nearest_code', 'VectorQuantizer']
