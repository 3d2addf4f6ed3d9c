"""Runner hooks registered in ``fqzoo.registry.HOOKS``."""
from .atomic_checkpoint import AtomicCheckpointHook
from .codebook_health import CodebookHealthHook
from .non_finite import NonFiniteError, NonFiniteGuardHook
from .random_state import RandomStateHook
from .reconstruction_grid import ReconstructionGridHook
from .safe_checkpoint import SafeCheckpointHook
from .sharded_ema import ShardedEMAHook
from .token_layout import TokenLayoutHook

__all__ = ['AtomicCheckpointHook', 'CodebookHealthHook', 'NonFiniteError',
           'NonFiniteGuardHook', 'RandomStateHook', 'ReconstructionGridHook',
           'SafeCheckpointHook', 'ShardedEMAHook', 'TokenLayoutHook']
