"""fqzoo: a component zoo for discrete visual tokenizers (FQGAN and friends)."""
__version__ = '0.1.0'
