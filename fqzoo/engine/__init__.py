"""Importing this package registers fqzoo's runners, model wrapper, FSDP
strategy and wrap policy, hooks and optimizer constructors, and routes
MMEngine's local checkpoint loading through
:func:`fqzoo.utils.checkpoint.safe_load` (see :mod:`fqzoo.engine.compat`)."""
from . import compat, hooks
from .flexible_runner import TokenizerFlexibleRunner
from .fsdp import TokenizerFSDPStrategy, module_type_wrap_policy
from .model_wrapper import TokenizerDistributedDataParallel
from .optim_constructor import TokenizerOptimWrapperConstructor
from .runner import TokenizerRunner

__all__ = ['compat', 'hooks', 'TokenizerDistributedDataParallel',
           'TokenizerFSDPStrategy', 'TokenizerFlexibleRunner',
           'TokenizerOptimWrapperConstructor', 'TokenizerRunner',
           'module_type_wrap_policy']
