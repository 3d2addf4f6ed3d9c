"""Runner hooks registered in ``fqzoo.registry.HOOKS``."""
from .codebook_health import CodebookHealthHook
from .random_state import RandomStateHook
from .reconstruction_grid import ReconstructionGridHook
from .safe_checkpoint import SafeCheckpointHook

__all__ = ['CodebookHealthHook', 'RandomStateHook', 'ReconstructionGridHook',
           'SafeCheckpointHook']
