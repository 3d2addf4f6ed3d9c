"""Importing this package registers fqzoo's runner, model wrapper, hooks and
optimizer constructors, and routes MMEngine's local checkpoint loading through
:func:`fqzoo.utils.checkpoint.safe_load` (see :mod:`fqzoo.engine.compat`)."""
from . import compat, hooks
from .model_wrapper import TokenizerDistributedDataParallel
from .optim_constructor import TokenizerOptimWrapperConstructor
from .runner import TokenizerRunner

__all__ = ['compat', 'hooks', 'TokenizerDistributedDataParallel',
           'TokenizerOptimWrapperConstructor', 'TokenizerRunner']
