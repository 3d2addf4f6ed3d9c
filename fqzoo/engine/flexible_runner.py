"""fqzoo's ``FlexibleRunner``: MMEngine's runner of strategies (FSDP,
DeepSpeed), with fqzoo's checkpoint hooks and strategies."""
from typing import Dict, List, Optional, Union

from mmengine.hooks import Hook
from mmengine.runner import FlexibleRunner

from fqzoo.engine.runner import register_fqzoo_hooks
from fqzoo.registry import RUNNERS, STRATEGIES, known_names

HookConfig = Union[dict, Hook]


@RUNNERS.register_module()
class TokenizerFlexibleRunner(FlexibleRunner):
    """``mmengine.runner.FlexibleRunner`` for configs that set a
    ``strategy`` (sharded training of large generators,
    :class:`~fqzoo.engine.fsdp.TokenizerFSDPStrategy`).

    As :class:`~fqzoo.engine.runner.TokenizerRunner`, it always registers
    :class:`SafeCheckpointHook` and :class:`RandomStateHook`, so checkpoints
    hold only tensors and plain values. Strategy types resolve in fqzoo's
    ``STRATEGIES`` first (then MMEngine's), before the runner's default
    scope exists. ``model_wrapper_cfg`` is not read: the strategy's
    ``model_wrapper`` is.

    Select it with ``runner_type = 'TokenizerFlexibleRunner'``;
    ``tools/train.py`` then builds it (see docs/distributed.md).
    """

    def build_strategy(self, strategy=None, *args, **kwargs):
        if isinstance(strategy, dict) and isinstance(strategy.get('type'),
                                                     str):
            strategy_type = STRATEGIES.get(strategy['type'])
            if strategy_type is None:
                raise KeyError(f'Unknown strategy type "{strategy["type"]}". '
                               f'Known strategy types: '
                               f'{", ".join(known_names(STRATEGIES))}')
            strategy = dict(strategy, type=strategy_type)
        return super().build_strategy(strategy, *args, **kwargs)

    def register_hooks(
            self,
            default_hooks: Optional[Dict[str, HookConfig]] = None,
            custom_hooks: Optional[List[HookConfig]] = None) -> None:
        super().register_hooks(default_hooks, custom_hooks)
        register_fqzoo_hooks(self)
