"""Importing this package registers every model component."""
from . import (
               backbones,
               decoders,
               discriminators,
               encoders,
               generators,
               losses,
               quantizers,
               regularizers,
               teachers,
               tokenizers,
)

__all__ = ['backbones', 'decoders', 'discriminators', 'encoders', 'generators',
           'losses', 'quantizers', 'regularizers', 'teachers', 'tokenizers']
