"""Fully sharded data parallel (FSDP) training of large token generators.

MMEngine's ``FlexibleRunner`` runs FSDP through its ``FSDPStrategy``; fqzoo's
:class:`TokenizerFSDPStrategy` is that strategy with three fixes, and
:func:`module_type_wrap_policy` lets a config choose the FSDP units by class
name (FAR: one unit per transformer block). Configs select them with::

    runner_type = 'TokenizerFlexibleRunner'
    strategy = dict(
        type='TokenizerFSDPStrategy',
        model_wrapper=dict(auto_wrap_policy=dict(
            type='fqzoo.module_type_wrap_policy',
            module_types=['fqzoo.models.generators.layers.TransformerBlock'])),
        state_dict_cfg='full')

(``configs/far/far_l_fqgan_dual_fsdp.py``, docs/distributed.md).
"""
import importlib
from functools import cache, partial
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.distributed as torch_dist
from mmengine._strategy.fsdp import FSDPStrategy
from mmengine.optim import BaseOptimWrapper, OptimWrapper, build_optim_wrapper
from torch import nn
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.distributed.fsdp import StateDictType

from fqzoo.registry import FUNCTIONS, STRATEGIES


@cache
def import_types(names: Tuple[str, ...]) -> Tuple[type, ...]:
    """The classes named by dotted paths (``'package.module.Class'``)."""
    types = []
    for name in names:
        module_name, _, attr = name.rpartition('.')
        if not module_name:
            raise ValueError(f'"{name}" is not a dotted path '
                             f'"package.module.Class"')
        types.append(getattr(importlib.import_module(module_name), attr))
    return tuple(types)


@FUNCTIONS.register_module()
def module_type_wrap_policy(module: nn.Module, recurse: bool,
                            nonwrapped_numel: int, *,
                            module_types: Sequence[str]) -> bool:
    """FSDP auto-wrap policy: every module of one of ``module_types`` is its
    own FSDP unit (its parameters are gathered only while it runs); all other
    parameters belong to the unit of the closest wrapped ancestor.

    Args:
        module (nn.Module): the module FSDP asks about.
        recurse (bool): True when FSDP asks whether to look into the
            children (always yes), False when it asks whether to wrap
            ``module``.
        nonwrapped_numel (int): parameters not yet wrapped (unused).
        module_types (Sequence[str]): dotted class paths, e.g.
            ``'fqzoo.models.generators.layers.TransformerBlock'``.

    Returns:
        bool: the answer.
    """
    if recurse:
        return True
    return isinstance(module, import_types(tuple(module_types)))


def clip_grad_norm_sharded(model: nn.Module, params, max_norm: float,
                           norm_type: Union[float, str] = 2.0) -> torch.Tensor:
    """``clip_grad_norm_`` for an ``OptimWrapper`` of an FSDP model: the
    norm of the full gradient, gathered over all shards (``params`` are the
    local shards; the root FSDP module knows them all)."""
    return model.clip_grad_norm_(max_norm, norm_type)


@STRATEGIES.register_module()
class TokenizerFSDPStrategy(FSDPStrategy):
    """MMEngine's ``FSDPStrategy`` with four fixes, writing full
    (unsharded) checkpoints only.

    - **Parameter groups.** MMEngine builds the optimizer after sharding,
      when every parameter is a flat 1-D shard, so ``paramwise_cfg`` rules
      that look at shapes (``flat_decay_mult``: FAR's "no weight decay on
      norms and biases") would hit every parameter. Here the optimizer is
      built on the unsharded model and then moved onto the shards by name.
    - **Gradient clipping.** ``clip_grad=dict(max_norm=...)`` clips by the
      norm of the whole gradient (``FSDP.clip_grad_norm_``), not by each
      rank's shard's norm.
    - **Resume.** MMEngine calls ``FSDP.optim_state_dict_to_load`` with
      its arguments out of order, so resuming an FSDP run failed
      (``TypeError: unhashable type: 'dict'``); here they are in order.
    - **CPU-only machines.** ``torchrun`` jobs without CUDA get a gloo
      process group (MMEngine's launcher calls ``torch.cuda.set_device``)
      and FSDP runs on ``device_id=cpu``. There the state dicts are not
      "offloaded to CPU": torch's offload of an optimizer state that is
      already on the CPU keeps a view of the buffer it gathers every state
      into, so each parameter's ``exp_avg`` came out equal to its
      ``exp_avg_sq`` in every checkpoint (torch 2.14,
      ``_optim_utils._gather_all_orig_param_state``).

    ``state_dict_cfg`` must give a full state dict (``'full'``, the
    default here; MMEngine's is ``'local'``): local and sharded state dicts
    hold ``ShardedTensor`` objects, which a checkpoint loaded with
    ``weights_only=True`` (as fqzoo loads every checkpoint) cannot hold, so
    such a run could never be resumed.

    Args:
        state_dict_cfg (str | dict): as in ``FSDPStrategy``, full state
            dicts only. Defaults to ``'full'``.
        **kwargs: ``FSDPStrategy``'s (``model_wrapper``,
            ``activation_checkpointing`` ...).
    """

    def __init__(self, *, state_dict_cfg: Union[str, dict] = 'full',
                 **kwargs) -> None:
        super().__init__(state_dict_cfg=state_dict_cfg, **kwargs)
        if self.state_dict_type != StateDictType.FULL_STATE_DICT:
            raise ValueError(
                f'TokenizerFSDPStrategy writes full state dicts only '
                f'(state_dict_cfg=\'full\'), got {state_dict_cfg!r}: '
                f'{self.state_dict_type.name} checkpoints hold ShardedTensor '
                f'objects, which fqzoo\'s weights_only=True loading refuses, '
                f'so the run could not be resumed')

    def _setup_distributed(self, launcher: str = 'pytorch',
                           backend: str = 'nccl', **kwargs) -> None:
        if launcher == 'pytorch' and not torch.cuda.is_available():
            if not torch_dist.is_initialized():
                torch_dist.init_process_group(backend='gloo', **kwargs)
            return
        super()._setup_distributed(launcher, backend, **kwargs)

    def _wrap_model(self, model: nn.Module) -> nn.Module:
        if not torch.cuda.is_available():
            self.model_wrapper = dict(self.model_wrapper or {},
                                      device_id=torch.device('cpu'))
            for config in (self.state_dict_config,
                           self.optim_state_dict_config):
                if hasattr(config, 'offload_to_cpu'):
                    config.offload_to_cpu = False
        return super()._wrap_model(model)

    def prepare(self, model: Union[nn.Module, dict], *,
                optim_wrapper: Union[BaseOptimWrapper, dict, None] = None,
                **kwargs):
        """``FSDPStrategy.prepare`` with the optimizer of a config built on
        the unsharded model (see the class docstring)."""
        if isinstance(optim_wrapper, dict) and not self._prepared:
            model = self.build_model(model)
            optim_wrapper = build_optim_wrapper(model, optim_wrapper)
        return super().prepare(model, optim_wrapper=optim_wrapper, **kwargs)

    def build_optim_wrapper(self, optim_wrapper: Union[BaseOptimWrapper,
                                                       dict],
                            model: Optional[nn.Module] = None
                            ) -> BaseOptimWrapper:
        if isinstance(optim_wrapper, OptimWrapper):
            self._move_to_shards(optim_wrapper.optimizer, optim_wrapper,
                                 model)
            wrapper = optim_wrapper
        else:
            wrapper = super().build_optim_wrapper(optim_wrapper, model)
        if (isinstance(wrapper, OptimWrapper)
                and getattr(wrapper, 'clip_func', None)
                is torch.nn.utils.clip_grad_norm_):
            wrapper.clip_func = partial(clip_grad_norm_sharded, model)
        return wrapper

    def load_optim_state_dict(self, state_dict: dict) -> None:
        """Load an optimizer state saved by :meth:`optim_state_dict` (for
        ``state_dict_cfg='full'``: rank 0's full state, keyed by parameter
        name) onto this rank's shards.

        Args:
            state_dict (dict): the checkpoint's ``optimizer`` entry.
        """
        self.optim_wrapper.load_state_dict(FSDP.optim_state_dict_to_load(
            self.model, self.optim_wrapper.optimizer, state_dict))

    def _move_to_shards(self, optimizer: torch.optim.Optimizer,
                        wrapper: OptimWrapper, model: nn.Module) -> None:
        """Point ``optimizer``'s parameter groups (built on the unsharded
        model, identified by ``self.id_to_name``) at the FSDP model's
        parameters of the same names, in place, and give it to ``wrapper``.
        (A new optimizer built from ``optimizer.defaults`` would fail for
        AdamW, whose defaults hold ``decoupled_weight_decay``, which its
        constructor does not take.)
        """
        if any(optimizer.state.values()):
            raise ValueError('the optimizer of an OptimWrapper given to '
                             'TokenizerFSDPStrategy must not have stepped')
        shards = {name.replace('_fsdp_wrapped_module.', ''): param
                  for name, param in model.named_parameters()}
        for group in optimizer.param_groups:
            group['params'] = [shards[self.id_to_name[id(p)]]
                               for p in group['params']]
        wrapper.optimizer = optimizer
