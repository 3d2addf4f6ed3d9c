"""Exponential moving average (EMA) of a model trained with FSDP."""
from typing import List, Optional, Tuple

import torch
from mmengine.hooks import EMAHook
from mmengine.registry import MODELS
from torch import nn

from fqzoo.registry import HOOKS


class LocalShards(nn.Module):
    """The parameters one rank holds of an FSDP model (its shards, flat
    views of the rank's part of each parameter), as one module: what
    :class:`ShardedEMAHook` averages.

    Args:
        model (nn.Module): the FSDP-wrapped model.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.shards = nn.ParameterList(model.parameters())


@HOOKS.register_module()
class ShardedEMAHook(EMAHook):
    """MMEngine's ``EMAHook`` for a model wrapped in FSDP.

    ``EMAHook`` deep-copies the whole model, which FSDP modules refuse
    (``cannot pickle 'module' object``). Here each rank keeps the average
    of its own shards: the EMA update (``lerp``) is elementwise, so the
    shards average to exactly what an unsharded EMA would hold. Checkpoints
    carry what ``EMAHook`` writes: ``state_dict`` holds the averaged
    weights (for deployment) and ``ema_state_dict`` the training weights
    under ``module.<name>`` keys plus ``steps``, gathered through the
    strategy, so ``init_generator`` and ``tools/sample.py`` read an FSDP
    run's EMA as a DDP run's. Resuming restores every shard's average
    exactly.

    :class:`~fqzoo.engine.TokenizerFlexibleRunner` uses it for an
    ``EMAHook`` in ``custom_hooks`` of an FSDP run; arguments are
    ``EMAHook``'s.

    Example:
        >>> custom_hooks = [dict(type='ShardedEMAHook', momentum=1e-4)]
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.ema_model: Optional[nn.Module] = None
        self._resumed: Optional[Tuple[torch.Tensor, List[torch.Tensor]]] = None

    def before_run(self, runner) -> None:
        """Start the average from the model's shards (loaded or resumed
        weights included: ``FlexibleRunner`` loads before ``before_run``),
        or from a resumed checkpoint's average."""
        self.src_model = LocalShards(runner.model)
        self.ema_model = MODELS.build(self.ema_cfg,
                                      default_args=dict(model=self.src_model))
        if self._resumed is not None:
            steps, shards = self._resumed
            self._resumed = None
            with torch.no_grad():
                for avg, value in zip(self.ema_model.module.parameters(),
                                      shards):
                    avg.copy_(value)
                self.ema_model.steps.copy_(steps)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        ema = _gathered(runner, self.ema_model.module.parameters())
        checkpoint['ema_state_dict'] = dict(
            steps=self.ema_model.steps.clone(),
            **{f'module.{key}': value for key, value in ema.items()})
        self._swap_ema_state_dict(checkpoint)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """On resume, take this rank's shards of the checkpoint's average;
        otherwise ``before_run`` starts the average from the loaded
        weights."""
        if 'ema_state_dict' not in checkpoint or not runner._resume:
            return
        self._swap_ema_state_dict(checkpoint)
        ema = checkpoint['ema_state_dict']
        weights = {key[len('module.'):]: value for key, value in ema.items()
                   if key.startswith('module.')}
        self._resumed = (torch.as_tensor(ema['steps']),
                         _scattered(runner, weights))


def _gathered(runner, shards) -> dict:
    """The full state dict (as the strategy writes it: on rank 0 only for
    ``state_dict_cfg='full'``) of the model with ``shards`` in place of its
    parameters; the model's own parameters are put back."""
    params = list(runner.model.parameters())
    kept = [param.detach().clone() for param in params]
    with torch.no_grad():
        for param, value in zip(params, shards):
            param.copy_(value)
        state = {key: value.clone() if torch.is_tensor(value) else value
                 for key, value in runner.strategy.model_state_dict().items()}
        for param, value in zip(params, kept):
            param.copy_(value)
    return state


def _scattered(runner, weights: dict) -> List[torch.Tensor]:
    """This rank's shards of the full state dict ``weights``, in the order
    of ``runner.model.parameters()``; the model's own parameters are put
    back."""
    params = list(runner.model.parameters())
    kept = [param.detach().clone() for param in params]
    runner.strategy.load_model_state_dict(weights)
    shards = [param.detach().clone() for param in params]
    with torch.no_grad():
        for param, value in zip(params, kept):
            param.copy_(value)
    return shards
