"""Importing this package registers fqzoo's hooks, optimizer constructors and
runner helpers."""
from . import hooks
from .optim_constructor import TokenizerOptimWrapperConstructor

__all__ = ['hooks', 'TokenizerOptimWrapperConstructor']
