"""fqzoo's Runner: MMEngine's, with checkpoints that load safely and are
written atomically."""
import os.path as osp
from typing import Dict, List, Optional, Union

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict
from mmengine.dist import master_only
from mmengine.fileio import LocalBackend, get_file_backend
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from fqzoo.engine.hooks.atomic_checkpoint import AtomicCheckpointHook
from fqzoo.engine.hooks.random_state import RandomStateHook
from fqzoo.engine.hooks.safe_checkpoint import SafeCheckpointHook
from fqzoo.engine.hooks.token_layout import TokenLayoutHook
from fqzoo.registry import MODEL_WRAPPERS, MODELS, RUNNERS
from fqzoo.utils import checkpoint as ckpt_utils
from fqzoo.utils.distributed import close_processes

HookConfig = Union[dict, Hook]
# the default hooks MMEngine registers itself (``None`` removes one)
MMENGINE_DEFAULT_HOOKS = ('runtime_info', 'timer', 'sampler_seed', 'logger',
                          'param_scheduler', 'checkpoint')


def close_process_group() -> None:
    """End a tool's distributed run cleanly: every rank waits at a barrier,
    then leaves the process group and frees it
    (:func:`~fqzoo.utils.distributed.close_processes`). Without it a rank
    that exits first can take its peer down while the peer's gloo threads
    still talk to it, and a group still held by the finished Runner is
    freed only while the interpreter shuts down ('terminate called without
    an active exception', SIGABRT). Does nothing outside a distributed
    run."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        close_processes()


@RUNNERS.register_module()
class TokenizerRunner(Runner):
    """``mmengine.runner.Runner`` that always registers
    :class:`SafeCheckpointHook` and :class:`RandomStateHook`, whatever
    ``custom_hooks`` a config sets, and runs ``torchrun`` jobs on CPU-only
    machines (gloo). It runs tokenizers and token generators alike.

    With it (and :mod:`fqzoo.engine.compat`) every checkpoint the runner
    writes holds only tensors and plain values, and ``resume`` / ``load_from``
    read checkpoints with ``torch.load(weights_only=True)``.

    Checkpoints survive a kill at any moment: a local checkpoint is written
    to a hidden temporary file in its folder, flushed and renamed
    (:func:`~fqzoo.utils.checkpoint.commit_file`); a
    ``default_hooks.checkpoint`` of type ``CheckpointHook`` becomes
    :class:`~fqzoo.engine.hooks.AtomicCheckpointHook` (``last_checkpoint``
    rewritten atomically after the save, old checkpoints deleted after it);
    and ``resume=True`` without a path (``tools/train.py --resume``) starts
    from the newest complete checkpoint
    (:func:`~fqzoo.utils.checkpoint.find_resumable_checkpoint`), never a
    truncated one.

    Select it with ``runner_type = 'TokenizerRunner'`` (set in
    ``configs/_base_/default_runtime.py``) and build with
    ``RUNNERS.build(cfg)`` or ``TokenizerRunner.from_cfg(cfg)``.
    """

    def setup_env(self, env_cfg: dict) -> None:
        """MMEngine's, plus CPU-only ``torchrun`` jobs: MMEngine's pytorch
        launcher calls ``torch.cuda.set_device``, so without CUDA the process
        group (``env_cfg.dist_cfg``, gloo) is initialized here first."""
        if (self.distributed and self.launcher == 'pytorch'
                and not torch.cuda.is_available()
                and not torch_dist.is_initialized()):
            dist_cfg = dict(env_cfg.get('dist_cfg', {}))
            dist_cfg.setdefault('backend', 'gloo')
            torch_dist.init_process_group(**dist_cfg)
        super().setup_env(env_cfg)

    def build_model(self, model: Union[nn.Module, dict]) -> nn.Module:
        """MMEngine's, through fqzoo's ``MODELS.build``: MMEngine's root
        registry builds without fqzoo's build function, so a misspelt type
        or argument of the model itself would not be answered with the
        known ones."""
        if isinstance(model, dict):
            model = MODELS.build(model)
        return super().build_model(model)

    def wrap_model(self, model_wrapper_cfg: Optional[dict],
                   model: nn.Module) -> nn.Module:
        """MMEngine's, with two fixes.

        MMEngine looks the wrapper type up in its root registry only, so a
        wrapper registered in fqzoo's ``MODEL_WRAPPERS`` (such as
        ``TokenizerDistributedDataParallel``) is passed on with its scope
        (``fqzoo.``). And MMEngine always gives DDP wrappers
        ``device_ids=[LOCAL_RANK]``, which CPU modules refuse: on CPU-only
        machines they get ``device_ids=None``.
        """
        if model_wrapper_cfg is not None:
            model_wrapper_cfg = dict(model_wrapper_cfg)
            name = model_wrapper_cfg.get('type')
            if isinstance(name, str) and name in MODEL_WRAPPERS.module_dict:
                model_wrapper_cfg['type'] = f'{MODEL_WRAPPERS.scope}.{name}'
        if (self.distributed and not torch.cuda.is_available()
                and not is_model_wrapper(model)):
            model_wrapper_cfg = model_wrapper_cfg or dict(
                type='MMDistributedDataParallel', broadcast_buffers=False,
                find_unused_parameters=self.cfg.get('find_unused_parameters',
                                                    False))
            wrapper = MODEL_WRAPPERS.get(
                model_wrapper_cfg.get('type', 'MMDistributedDataParallel'))
            if issubclass(wrapper, DistributedDataParallel):
                model_wrapper_cfg['device_ids'] = None
        return super().wrap_model(model_wrapper_cfg, model)

    def register_default_hooks(
            self, hooks: Optional[Dict[str, HookConfig]] = None) -> None:
        """MMEngine's, with a ``CheckpointHook`` config (MMEngine's default
        included) built as :class:`AtomicCheckpointHook`, and ``None``
        turning off a default hook that fqzoo's configs add (such as
        ``non_finite``), not only one of MMEngine's."""
        super().register_default_hooks(fqzoo_default_hooks(hooks))

    @master_only
    def save_checkpoint(self, out_dir: str, filename: str,
                        file_client_args: Optional[dict] = None,
                        **kwargs) -> None:
        """MMEngine's, written atomically to a local ``out_dir``: the
        checkpoint goes to a temporary file in the same folder, which is
        flushed to disk and renamed to ``filename`` only once complete.
        Arguments are ``Runner.save_checkpoint``'s."""
        backend = get_file_backend(out_dir,
                                   backend_args=kwargs.get('backend_args'))
        if file_client_args is not None or not isinstance(backend,
                                                          LocalBackend):
            super().save_checkpoint(out_dir, filename, file_client_args,
                                    **kwargs)
            return
        tmp = ckpt_utils.temporary_name(filename)
        super().save_checkpoint(out_dir, tmp, **kwargs)
        ckpt_utils.commit_file(osp.join(out_dir, tmp),
                               osp.join(out_dir, filename))

    def load_or_resume(self) -> None:
        """MMEngine's, except that ``resume=True`` without ``load_from``
        resumes from the newest complete checkpoint of the work dir (with a
        warning naming a ``last_checkpoint`` target that is missing or
        truncated) rather than whatever ``last_checkpoint`` names."""
        choose_resumable_checkpoint(self)
        super().load_or_resume()

    def register_hooks(
            self,
            default_hooks: Optional[Dict[str, HookConfig]] = None,
            custom_hooks: Optional[List[HookConfig]] = None) -> None:
        super().register_hooks(default_hooks, custom_hooks)
        register_fqzoo_hooks(self)


def fqzoo_default_hooks(
        hooks: Optional[Dict[str, HookConfig]]) -> Dict[str, HookConfig]:
    """A config's ``default_hooks`` as fqzoo's runners register them: a
    ``CheckpointHook`` config (MMEngine's default included) becomes
    :class:`AtomicCheckpointHook`, and ``None`` turns off any default hook,
    not only one of MMEngine's."""
    hooks = {name: hook for name, hook in (hooks or {}).items()
             if hook is not None or name in MMENGINE_DEFAULT_HOOKS}
    checkpoint = hooks.get('checkpoint', dict(type='CheckpointHook',
                                              interval=1))
    if isinstance(checkpoint, dict) and checkpoint.get('type') in (
            'CheckpointHook', 'mmengine.CheckpointHook', CheckpointHook):
        hooks['checkpoint'] = dict(checkpoint, type=AtomicCheckpointHook)
    return hooks


def choose_resumable_checkpoint(runner) -> None:
    """Before ``load_or_resume``: a runner asked to resume without a path
    (``resume=True``) resumes from the newest complete checkpoint of its
    work dir (:func:`~fqzoo.utils.checkpoint.find_resumable_checkpoint`),
    or trains from scratch when there is none."""
    if runner._resume and runner._load_from is None and not runner._has_loaded:
        found = ckpt_utils.find_resumable_checkpoint(runner.work_dir,
                                                     runner.logger)
        if found is None:
            runner.logger.info(f'No complete checkpoint in '
                               f'{runner.work_dir}: training from scratch.')
            runner._resume = False
        else:
            runner.logger.info(f'Auto resumed from the newest complete '
                               f'checkpoint {found}.')
            runner._load_from = found


def register_fqzoo_hooks(runner) -> None:
    """Add :class:`SafeCheckpointHook`, :class:`RandomStateHook` and
    :class:`TokenLayoutHook` to a runner whose configs did not name them
    (TokenizerRunner and TokenizerFlexibleRunner both need them)."""
    for hook_type in (SafeCheckpointHook, RandomStateHook, TokenLayoutHook):
        if not any(isinstance(hook, hook_type) for hook in runner.hooks):
            runner.register_hook(hook_type())


def use_gloo_without_cuda(cfg: Config) -> None:
    """NCCL needs GPUs: set ``env_cfg.dist_cfg.backend='gloo'`` on CPU-only
    machines."""
    if not torch.cuda.is_available():
        env_cfg = cfg.setdefault('env_cfg', ConfigDict())
        env_cfg.setdefault('dist_cfg', ConfigDict())['backend'] = 'gloo'


def build_runner(cfg: Config) -> Runner:
    """The runner of ``cfg``: ``RUNNERS.build`` when it names a
    ``runner_type``, :class:`TokenizerRunner` otherwise."""
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return TokenizerRunner.from_cfg(cfg)
