"""fqzoo's ``FlexibleRunner``: MMEngine's runner of strategies (FSDP,
DeepSpeed), with fqzoo's checkpoint hooks and strategies, and checkpoints
written atomically."""
import os.path as osp
from typing import Dict, List, Optional, Union

from mmengine._strategy import FSDPStrategy
from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, get_file_backend
from mmengine.hooks import EMAHook, Hook
from mmengine.runner import FlexibleRunner

from fqzoo.engine.hooks.sharded_ema import ShardedEMAHook
from fqzoo.engine.runner import (
    choose_resumable_checkpoint,
    fqzoo_default_hooks,
    register_fqzoo_hooks,
)
from fqzoo.errors import InputKeyError
from fqzoo.registry import RUNNERS, STRATEGIES, known_names
from fqzoo.utils import checkpoint as ckpt_utils

HookConfig = Union[dict, Hook]


@RUNNERS.register_module()
class TokenizerFlexibleRunner(FlexibleRunner):
    """``mmengine.runner.FlexibleRunner`` for configs that set a
    ``strategy`` (sharded training of large generators,
    :class:`~fqzoo.engine.fsdp.TokenizerFSDPStrategy`).

    It keeps :class:`~fqzoo.engine.TokenizerRunner`'s guarantees:

    - checkpoints hold only tensors and plain values
      (:class:`SafeCheckpointHook` and :class:`RandomStateHook` are always
      registered);
    - an FSDP run's local checkpoint (written whole by rank 0, see
      :class:`~fqzoo.engine.fsdp.TokenizerFSDPStrategy`) goes to a
      temporary name and is renamed once complete
      (:func:`~fqzoo.utils.checkpoint.commit_file`); a
      ``default_hooks.checkpoint`` of type ``CheckpointHook`` becomes
      :class:`~fqzoo.engine.hooks.AtomicCheckpointHook`; ``resume=True``
      without a path starts from the newest complete checkpoint;
    - an ``EMAHook`` in ``custom_hooks`` of an FSDP run becomes
      :class:`~fqzoo.engine.hooks.ShardedEMAHook` (``EMAHook`` cannot copy
      an FSDP model).

    Strategy types resolve in fqzoo's ``STRATEGIES`` first (then
    MMEngine's), before the runner's default scope exists.
    ``model_wrapper_cfg`` is not read: the strategy's ``model_wrapper`` is.

    Select it with ``runner_type = 'TokenizerFlexibleRunner'``;
    ``tools/train.py`` then builds it (see docs/distributed.md).
    """

    def build_strategy(self, strategy=None, *args, **kwargs):
        if isinstance(strategy, dict) and isinstance(strategy.get('type'),
                                                     str):
            strategy_type = STRATEGIES.get(strategy['type'])
            if strategy_type is None:
                raise InputKeyError(
                    f'Unknown strategy type "{strategy["type"]}". Known '
                    f'strategy types: {", ".join(known_names(STRATEGIES))}')
            strategy = dict(strategy, type=strategy_type)
        return super().build_strategy(strategy, *args, **kwargs)

    def register_default_hooks(
            self, hooks: Optional[Dict[str, HookConfig]] = None) -> None:
        """MMEngine's, with fqzoo's atomic checkpoint hook (see
        :func:`~fqzoo.engine.runner.fqzoo_default_hooks`)."""
        super().register_default_hooks(fqzoo_default_hooks(hooks))

    def register_custom_hooks(self, hooks: List[HookConfig]) -> None:
        """MMEngine's, with an ``EMAHook`` config of an FSDP run built as
        :class:`ShardedEMAHook`."""
        if isinstance(self.strategy, FSDPStrategy):
            hooks = [dict(hook, type=ShardedEMAHook)
                     if isinstance(hook, dict) and hook.get('type') in (
                         'EMAHook', 'mmengine.EMAHook', EMAHook) else hook
                     for hook in hooks]
        super().register_custom_hooks(hooks)

    def register_hooks(
            self,
            default_hooks: Optional[Dict[str, HookConfig]] = None,
            custom_hooks: Optional[List[HookConfig]] = None) -> None:
        super().register_hooks(default_hooks, custom_hooks)
        register_fqzoo_hooks(self)

    def load_or_resume(self) -> None:
        """MMEngine's, except that ``resume=True`` without ``load_from``
        resumes from the newest complete checkpoint of the work dir."""
        choose_resumable_checkpoint(self)
        super().load_or_resume()

    def save_checkpoint(self, out_dir: str, filename: str,
                        file_client_args: Optional[dict] = None,
                        **kwargs) -> None:
        """MMEngine's (every rank takes part: the strategy gathers the
        state), written atomically by FSDP strategies to a local
        ``out_dir``: rank 0 writes the checkpoint under a temporary name in
        ``out_dir`` and renames it to ``filename`` once complete. Other
        strategies (DeepSpeed writes a folder from every rank) save as in
        MMEngine. Arguments are ``FlexibleRunner.save_checkpoint``'s."""
        backend = get_file_backend(out_dir,
                                   backend_args=kwargs.get('backend_args'))
        if (file_client_args is not None
                or not isinstance(backend, LocalBackend)
                or not isinstance(self.strategy, FSDPStrategy)):
            super().save_checkpoint(out_dir, filename, file_client_args,
                                    **kwargs)
            return
        tmp = osp.join(out_dir, ckpt_utils.temporary_name(filename))
        path = osp.join(out_dir, filename)
        super().save_checkpoint(out_dir, osp.basename(tmp), **kwargs)
        if is_main_process():
            ckpt_utils.commit_file(tmp, path)

