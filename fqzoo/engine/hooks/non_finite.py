"""Skip optimizer updates whose loss or gradients are not finite."""
import os.path as osp
from typing import Dict, List, Optional

import torch
import torch.distributed as torch_dist
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from fqzoo.registry import HOOKS
from fqzoo.utils.checkpoint import write_text_atomic

POLICIES = ('skip', 'stop', 'raise')


class NonFiniteError(RuntimeError):
    """Training stopped on non-finite losses or gradients."""


class _StepGuard:
    """Guards one ``OptimWrapper``: records the losses passed to its
    ``backward`` and turns its ``step`` into a no-op when one of them, or a
    gradient of its parameters, is NaN or infinite.

    The wrapper's ``backward`` and ``step`` are replaced on the instance, so
    every caller (``update_params``, a model's own ``train_step``) goes
    through the guard; ``update_params`` still zeroes the gradients after a
    skipped step. The decision is all-reduced over ranks, so every rank
    skips together.

    Args:
        wrapper (OptimWrapper): the guarded wrapper.
        param_names (dict): parameter id -> name, for the messages.
        check_grads (bool): whether gradients are checked; off for
            ``AmpOptimWrapper``, whose loss scaler skips overflowing steps
            itself.
    """

    def __init__(self, wrapper: OptimWrapper, param_names: Dict[int, str],
                 check_grads: bool) -> None:
        self.wrapper = wrapper
        self.param_names = param_names
        self.check_grads = check_grads
        self.losses: List[torch.Tensor] = []
        self.skipped: Optional[str] = None
        self._backward = wrapper.backward
        self._step = wrapper.step
        wrapper.backward = self.backward
        wrapper.step = self.step

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        self.losses.append(loss.detach())
        self._backward(loss, **kwargs)

    def step(self, **kwargs) -> None:
        losses, self.losses = self.losses, []
        reason = self._bad(losses)
        if reason is None:
            self._step(**kwargs)
        else:
            self.skipped = reason

    def _grads(self) -> List[tuple]:
        return [(p, p.grad) for group in self.wrapper.param_groups
                for p in group['params'] if p.grad is not None]

    def _bad(self, losses: List[torch.Tensor]) -> Optional[str]:
        """Why this step must be skipped, or None."""
        grads = [g for _, g in self._grads()] if self.check_grads else []
        params = [p for group in self.wrapper.param_groups
                  for p in group['params']]
        device = params[0].device if params else torch.device('cpu')
        bad = torch.zeros((), dtype=torch.int32, device=device)
        for tensor in losses + grads:
            bad |= ~torch.isfinite(tensor).all().to(device)
        if torch_dist.is_available() and torch_dist.is_initialized():
            torch_dist.all_reduce(bad, op=torch_dist.ReduceOp.MAX)
        if not bad.item():
            return None
        values = [f'{v.item():g}' for v in losses
                  if v.numel() == 1 and not torch.isfinite(v)]
        if values:
            return f'loss {", ".join(values)}'
        names = [self.param_names.get(id(p), '?') for p, g in self._grads()
                 if not torch.isfinite(g).all()]
        if names:
            more = f' and {len(names) - 5} more' if len(names) > 5 else ''
            return f'gradients of {", ".join(names[:5])}{more}'
        return 'on another rank'


@HOOKS.register_module()
class NonFiniteGuardHook(Hook):
    """Skip the optimizer updates of iterations whose loss or gradients are
    NaN or infinite, and stop a run that keeps producing them.

    Before training, every optimizer wrapper of the runner (both of a GAN
    tokenizer's ``autoencoder`` and ``discriminator``, the single one of a
    token generator) is guarded: its ``step`` checks the losses given to
    ``backward`` since the last step and the gradients of its parameters,
    and applies nothing when one is not finite, so the parameters and the
    optimizer state stay as they were before that iteration (another
    optimizer whose values are finite still steps). Buffers updated in the
    forward pass (BatchNorm statistics, EMA codebooks) are not rolled back.
    With ``AmpOptimWrapper`` only losses are checked: its loss scaler
    already skips overflowing gradients and lowers the scale.

    After an iteration with a skipped update it logs a warning naming the
    iteration (1-based, as the logger's ``Iter(train) [n/N]``), the
    non-finite losses of the model's outputs (or the parameters whose
    gradients are not finite) and the skipped optimizers. Then, by
    ``policy``:

    - ``'skip'``: go on; after ``max_consecutive`` consecutive iterations
      with skipped updates, stop as ``'stop'`` does;
    - ``'stop'``: save ``iter_{n}.pth`` (the weights before the bad
      update, which ``--resume`` picks up) and raise
      :class:`NonFiniteError` naming it;
    - ``'raise'``: raise :class:`NonFiniteError` at once, no checkpoint.

    The base runtime configs (``configs/_base_/default_runtime.py``, which
    ``generator_runtime.py`` extends) register it as
    ``default_hooks.non_finite``; ``non_finite=None`` turns it off.

    Args:
        policy (str): 'skip', 'stop' or 'raise'. Defaults to 'skip'.
        max_consecutive (int): consecutive iterations with skipped updates
            after which 'skip' stops. Defaults to 10.

    Example:
        >>> default_hooks = dict(non_finite=dict(
        ...     type='NonFiniteGuardHook', policy='skip', max_consecutive=5))
    """

    priority = 'LOWEST'

    def __init__(self, policy: str = 'skip', max_consecutive: int = 10
                 ) -> None:
        if policy not in POLICIES:
            raise ValueError(f'policy must be one of {POLICIES}, got '
                             f'"{policy}"')
        if max_consecutive < 1:
            raise ValueError(f'max_consecutive must be >= 1, got '
                             f'{max_consecutive}')
        self.policy = policy
        self.max_consecutive = max_consecutive
        self.consecutive = 0
        self._guards: Dict[str, _StepGuard] = {}

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        names = {id(p): n for n, p in model.named_parameters()}
        wrappers = runner.optim_wrapper
        items = (wrappers.items() if hasattr(wrappers, 'items')
                 else [('optimizer', wrappers)])
        for name, wrapper in items:
            guard = self._guards.get(name)
            if guard is not None and guard.wrapper is wrapper:
                continue
            self._guards[name] = _StepGuard(
                wrapper, names,
                check_grads=not isinstance(wrapper, AmpOptimWrapper))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        skipped = {name: guard.skipped for name, guard in
                   self._guards.items() if guard.skipped is not None}
        for guard in self._guards.values():
            guard.skipped = None
        if not skipped:
            self.consecutive = 0
            return
        self.consecutive += 1
        bad_losses = [f'{key}={_scalar(value)}'
                      for key, value in (outputs or {}).items()
                      if 'loss' in key and not _finite(value)]
        message = (
            f'Non-finite values at iteration {runner.iter + 1}: '
            f'{", ".join(bad_losses) or "no non-finite loss in the outputs"}'
            '; skipped the update of '
            + ', '.join(f'{name} ({why})' for name, why in skipped.items())
            + f'. {self.consecutive} consecutive iteration(s) skipped, '
            f'policy "{self.policy}", limit {self.max_consecutive}.')
        runner.logger.warning(message)
        if self.policy == 'raise':
            raise NonFiniteError(message)
        if self.policy == 'stop' or self.consecutive >= self.max_consecutive:
            path = self._save(runner)
            raise NonFiniteError(
                f'{message} Training stopped; saved the weights from before '
                f'the bad update(s) to {path}. Lower the learning rate, clip '
                'gradients or check the data, then resume with --resume.')

    @staticmethod
    def _save(runner) -> str:
        """Save ``iter_{n}.pth`` in the work dir and point
        ``last_checkpoint`` at it."""
        filename = f'iter_{runner.iter + 1}.pth'
        runner.save_checkpoint(runner.work_dir, filename, by_epoch=False)
        path = osp.join(runner.work_dir, filename)
        if runner.rank == 0:
            write_text_atomic(osp.join(runner.work_dir, 'last_checkpoint'),
                              path)
        return path


def _finite(value) -> bool:
    return bool(torch.isfinite(torch.as_tensor(value, dtype=torch.float64))
                .all())


def _scalar(value) -> str:
    value = torch.as_tensor(value, dtype=torch.float64)
    return f'{value.item():g}' if value.numel() == 1 else 'non-finite'
