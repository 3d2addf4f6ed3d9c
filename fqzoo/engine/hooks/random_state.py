"""Resume with the random state the interrupted run had."""
import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook

from fqzoo.registry import HOOKS
from fqzoo.utils.checkpoint import to_plain


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Saves the torch (CPU and CUDA), Python and NumPy random states in
    every checkpoint and restores them when a resumed run reaches its first
    iteration, so dropout, label dropout and random views draw what the
    uninterrupted run would have drawn (MMEngine re-seeds instead).

    The state is restored in ``before_train_iter`` of the checkpoint's
    iteration, after MMEngine has skipped the already-trained batches, so
    data loading that draws no global random numbers (fqzoo's samplers and
    :class:`~fqzoo.datasets.CodeDataset` with the random view drawn by the
    model's data preprocessor) resumes bit-exactly. ``TokenizerRunner``
    registers it on every run; the state is stored as tensors and plain
    values (``checkpoint['random_state']``).
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._pending: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['random_state'] = dict(
            iter=checkpoint['meta']['iter'],
            torch=torch.get_rng_state(),
            cuda=(torch.cuda.get_rng_state_all()
                  if torch.cuda.is_available() else []),
            python=to_plain(random.getstate()),
            numpy=to_plain(np.random.get_state()))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._pending = checkpoint.get('random_state')

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        state, self._pending = self._pending, None
        if state is None or state['iter'] != runner.iter:
            return
        # A resume on a GPU loads the checkpoint onto it; the generators
        # take their states as CPU byte tensors only.
        torch.set_rng_state(state['torch'].cpu())
        if state['cuda'] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state['cuda']])
        version, internal, gauss = state['python']
        random.setstate((version, tuple(internal), gauss))
        kind, keys, pos, has_gauss, cached = state['numpy']
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos,
                             has_gauss, cached))
