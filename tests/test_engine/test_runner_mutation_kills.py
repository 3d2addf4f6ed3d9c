"""TokenizerRunner's overrides and the helpers of fqzoo/engine/runner.py,
checked on bare runners (``TokenizerRunner.__new__`` with only the
attributes a method reads) and stand-ins; distributed paths run in a
one-process gloo group (docs/testing.md lists the mutants these tests
kill).

Expected values come from the docstrings: MMEngine's default checkpoint
hook is ``CheckpointHook(interval=1)``, a CPU-only DDP wrapper gets
``device_ids=None``, ``broadcast_buffers=False`` and the config's
``find_unused_parameters`` (False when unset).
"""
import itertools
import os
import socket
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.hooks import CheckpointHook, EmptyCacheHook, LoggerHook
from mmengine.model import MMDistributedDataParallel
from torch import nn

from fqzoo.engine import TokenizerDistributedDataParallel, TokenizerRunner
from fqzoo.engine.hooks import (
    AtomicCheckpointHook,
    NonFiniteGuardHook,
    SafeCheckpointHook,
    TokenLayoutHook,
)
from fqzoo.engine.hooks.random_state import RandomStateHook
from fqzoo.engine.runner import (
    build_runner,
    choose_resumable_checkpoint,
    fqzoo_default_hooks,
    register_fqzoo_hooks,
)
from fqzoo.registry import MODEL_WRAPPERS, MODELS

NAMES = itertools.count()
DIST_VARS = ('MASTER_ADDR', 'MASTER_PORT', 'RANK', 'WORLD_SIZE',
             'LOCAL_RANK')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture
def cpu_only(monkeypatch):
    """A CPU-only machine with no process group and no torchrun
    variables; any group a test starts is destroyed after it (and the
    thread variables MMEngine sets for distributed runs are restored)."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    for name in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        monkeypatch.setenv(name, os.environ.get(name, '1'))
    for name in DIST_VARS:
        monkeypatch.delenv(name, raising=False)
    assert not dist.is_initialized()
    yield monkeypatch
    if dist.is_initialized():
        dist.destroy_process_group()


@pytest.fixture
def one_process_group(cpu_only, tmp_path):
    """A one-process gloo group, as ``torchrun --nproc_per_node 1`` on a
    CPU machine has once the runner's environment is set up."""
    cpu_only.setenv('LOCAL_RANK', '0')
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/pg',
                            rank=0, world_size=1)
    return cpu_only


def bare_runner(**attrs) -> TokenizerRunner:
    runner = TokenizerRunner.__new__(TokenizerRunner)
    runner._hooks = []
    for name, value in attrs.items():
        setattr(runner, name, value)
    return runner


def recording_logger():
    """A logger keeping its info and warning messages in lists."""
    logger = SimpleNamespace(infos=[], warnings=[])
    logger.info, logger.warning = logger.infos.append, logger.warnings.append
    return logger


# --------------------------------------------------------------------------
# setup_env


def dist_runner(distributed=True, launcher='pytorch'):
    return bare_runner(_distributed=distributed, _launcher=launcher)


def test_setup_env_starts_gloo_group_with_the_configs_dist_cfg(
        cpu_only, tmp_path):
    store = tmp_path / 'store'
    runner = dist_runner()
    runner.setup_env(dict(dist_cfg=dict(
        init_method=f'file://{store}', rank=0, world_size=1)))
    # the group came from the config's file store (no MASTER_ADDR is set)
    # with the backend fqzoo adds, then MMEngine's setup ran on it
    assert dist.is_initialized()
    assert dist.get_backend() == 'gloo'
    assert store.exists()
    assert (runner._rank, runner._world_size) == (0, 1)
    assert len(runner._timestamp) == len('20240101_000000')


def test_setup_env_without_dist_cfg_uses_torchrun_variables(cpu_only):
    for name, value in (('MASTER_ADDR', '127.0.0.1'),
                        ('MASTER_PORT', str(free_port())),
                        ('RANK', '0'), ('WORLD_SIZE', '1')):
        cpu_only.setenv(name, value)
    runner = dist_runner()
    runner.setup_env(dict())
    assert dist.get_backend() == 'gloo'
    assert runner._world_size == 1


def test_setup_env_keeps_a_group_already_started(one_process_group):
    group = dist.group.WORLD
    runner = dist_runner()
    runner.setup_env(dict(dist_cfg=dict(backend='gloo')))
    assert dist.group.WORLD is group
    assert runner._world_size == 1


def test_setup_env_single_process_starts_no_group(cpu_only):
    runner = dist_runner(distributed=False, launcher='none')
    runner.setup_env(dict())
    assert not dist.is_initialized()
    assert (runner._rank, runner._world_size) == (0, 1)


# --------------------------------------------------------------------------
# build_model


def test_build_model_builds_dicts_with_fqzoo_registry():
    built = bare_runner().build_model(dict(type='CodeDataPreprocessor'))
    assert type(built) is MODELS.get('CodeDataPreprocessor')


def test_build_model_returns_a_module_unchanged():
    module = nn.Linear(2, 3)
    assert bare_runner().build_model(module) is module


# --------------------------------------------------------------------------
# wrap_model


class RecordingWrapper(nn.Module):
    """A wrapper registered in fqzoo's MODEL_WRAPPERS only, not a DDP."""

    def __init__(self, module, **kwargs):
        super().__init__()
        self.module = module
        self.kwargs = kwargs


@pytest.fixture
def recording_wrapper():
    name = f'RecordingWrapper{next(NAMES)}'
    MODEL_WRAPPERS.register_module(name=name, module=RecordingWrapper)
    yield name
    MODEL_WRAPPERS._module_dict.pop(name)


def wrap_runner(distributed=True, **cfg):
    logger = recording_logger()
    return bare_runner(_distributed=distributed, cfg=Config(cfg),
                       logger=logger)


def test_wrap_model_default_ddp_on_cpu(one_process_group):
    wrapped = wrap_runner().wrap_model(None, nn.Linear(2, 2))
    assert type(wrapped) is MMDistributedDataParallel
    assert wrapped.device_ids is None
    assert wrapped.broadcast_buffers is False
    assert wrapped.find_unused_parameters is False


def test_wrap_model_default_ddp_takes_find_unused_parameters(
        one_process_group):
    runner = wrap_runner(find_unused_parameters=True)
    wrapped = runner.wrap_model(None, nn.Linear(2, 2))
    assert type(wrapped) is MMDistributedDataParallel
    assert wrapped.find_unused_parameters is True
    assert wrapped.broadcast_buffers is False


def test_wrap_model_config_without_type_is_mmengine_ddp(one_process_group):
    wrapped = wrap_runner().wrap_model(dict(find_unused_parameters=True),
                                       nn.Linear(2, 2))
    assert type(wrapped) is MMDistributedDataParallel
    assert wrapped.device_ids is None
    assert wrapped.find_unused_parameters is True


def test_wrap_model_fqzoo_wrapper_by_name(one_process_group):
    cfg = dict(type='TokenizerDistributedDataParallel')
    wrapped = wrap_runner().wrap_model(cfg, nn.Sequential(nn.Linear(2, 2)))
    assert type(wrapped) is TokenizerDistributedDataParallel
    # each trainable child is a CPU DDP
    assert type(wrapped.module[0]) is MMDistributedDataParallel
    assert wrapped.module[0].device_ids is None
    assert cfg == dict(type='TokenizerDistributedDataParallel')


def test_wrap_model_non_ddp_wrapper_gets_no_device_ids(one_process_group,
                                                       recording_wrapper):
    model = nn.Linear(2, 2)
    wrapped = wrap_runner().wrap_model(dict(type=recording_wrapper, a=1),
                                       model)
    assert type(wrapped) is RecordingWrapper
    assert wrapped.module is model
    assert wrapped.kwargs == dict(a=1)


def test_wrap_model_mmengine_wrapper_by_name_unchanged(one_process_group):
    wrapped = wrap_runner().wrap_model(
        dict(type='MMDistributedDataParallel', broadcast_buffers=True),
        nn.Linear(2, 2))
    assert type(wrapped) is MMDistributedDataParallel
    assert wrapped.broadcast_buffers is True
    assert wrapped.device_ids is None


def test_wrap_model_keeps_a_wrapped_model(one_process_group):
    wrapped = wrap_runner().wrap_model(None, nn.Linear(2, 2))
    assert wrap_runner().wrap_model(None, wrapped) is wrapped


def test_wrap_model_single_process_ignores_the_wrapper_config(cpu_only):
    model = nn.Linear(2, 2)
    runner = wrap_runner(distributed=False)
    assert runner.wrap_model(dict(type='NoSuchWrapper'), model) is model
    assert runner.wrap_model(None, model) is model


# --------------------------------------------------------------------------
# fqzoo_default_hooks


def atomic(**cfg):
    return dict(cfg, type=AtomicCheckpointHook)


def test_default_hooks_default_checkpoint_is_atomic_interval_1():
    assert fqzoo_default_hooks(None) == dict(checkpoint=atomic(interval=1))
    assert fqzoo_default_hooks({}) == dict(checkpoint=atomic(interval=1))


@pytest.mark.parametrize('hook_type', [
    'CheckpointHook', 'mmengine.CheckpointHook', CheckpointHook])
def test_default_hooks_checkpoint_configs_become_atomic(hook_type):
    hooks = dict(checkpoint=dict(type=hook_type, interval=5, max_keep_ckpts=2),
                 timer=dict(type='IterTimerHook'))
    assert fqzoo_default_hooks(hooks) == dict(
        checkpoint=atomic(interval=5, max_keep_ckpts=2),
        timer=dict(type='IterTimerHook'))
    assert hooks['checkpoint']['type'] == hook_type


def test_default_hooks_keep_other_checkpoint_hooks():
    own = dict(type='MyCheckpointHook', interval=3)
    built = CheckpointHook(interval=3)
    assert fqzoo_default_hooks(dict(checkpoint=own)) == dict(checkpoint=own)
    assert fqzoo_default_hooks(dict(checkpoint=built)) == dict(
        checkpoint=built)


def test_default_hooks_none_removes_any_default_hook():
    non_finite = dict(type='NonFiniteGuardHook')
    assert fqzoo_default_hooks(dict(
        logger=None, non_finite=non_finite, grid=None)) == dict(
            logger=None, non_finite=non_finite,
            checkpoint=atomic(interval=1))


# --------------------------------------------------------------------------
# register_default_hooks / register_hooks / register_fqzoo_hooks


def types_of(runner):
    return [type(hook) for hook in runner.hooks]


def test_register_default_hooks_makes_checkpoint_atomic():
    runner = bare_runner()
    runner.register_default_hooks()
    assert AtomicCheckpointHook in types_of(runner)
    assert LoggerHook in types_of(runner)


def test_register_default_hooks_passes_the_configs_hooks():
    runner = bare_runner()
    runner.register_default_hooks(dict(
        logger=None, checkpoint=dict(type='CheckpointHook', interval=7),
        non_finite=dict(type=NonFiniteGuardHook)))
    assert LoggerHook not in types_of(runner)
    [ckpt] = [h for h in runner.hooks if isinstance(h, CheckpointHook)]
    assert type(ckpt) is AtomicCheckpointHook and ckpt.interval == 7
    assert NonFiniteGuardHook in types_of(runner)


def test_register_hooks_registers_defaults_custom_and_fqzoos():
    runner = bare_runner()
    runner.register_hooks(
        dict(checkpoint=dict(type='CheckpointHook', interval=5)),
        [dict(type='EmptyCacheHook')])
    [ckpt] = [h for h in runner.hooks if isinstance(h, CheckpointHook)]
    assert type(ckpt) is AtomicCheckpointHook and ckpt.interval == 5
    kinds = types_of(runner)
    for kind in (EmptyCacheHook, SafeCheckpointHook, RandomStateHook,
                 TokenLayoutHook):
        assert kinds.count(kind) == 1


def stand_in_hooks(*hooks):
    runner = SimpleNamespace(hooks=list(hooks))
    runner.register_hook = runner.hooks.append
    return runner


def test_register_fqzoo_hooks_adds_the_missing_ones_once():
    runner = stand_in_hooks()
    register_fqzoo_hooks(runner)
    assert types_of(runner) == [SafeCheckpointHook, RandomStateHook,
                                TokenLayoutHook]
    own = RandomStateHook()
    runner = stand_in_hooks(own)
    register_fqzoo_hooks(runner)
    assert types_of(runner) == [RandomStateHook, SafeCheckpointHook,
                                TokenLayoutHook]
    assert runner.hooks[0] is own


# --------------------------------------------------------------------------
# choose_resumable_checkpoint / load_or_resume


def save(path):
    torch.save(dict(meta=dict(iter=1)), path)
    return str(path)


def resume_stand_in(work_dir, resume=True, load_from=None, loaded=False):
    return SimpleNamespace(_resume=resume, _load_from=load_from,
                           _has_loaded=loaded, work_dir=str(work_dir),
                           logger=recording_logger())


def test_choose_resumes_newest_complete_checkpoint(tmp_path):
    good = save(tmp_path / 'iter_2.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    runner = resume_stand_in(tmp_path)
    choose_resumable_checkpoint(runner)
    assert runner._load_from == good and runner._resume is True
    assert runner.logger.infos == [
        f'Auto resumed from the newest complete checkpoint {good}.']
    # the missing target named by last_checkpoint is reported to the
    # runner's logger
    assert any('iter_4.pth' in w for w in runner.logger.warnings)


def test_choose_without_checkpoint_trains_from_scratch(tmp_path):
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    (tmp_path / 'iter_4.pth').write_bytes(b'PK\x03\x04 cut')
    runner = resume_stand_in(tmp_path)
    choose_resumable_checkpoint(runner)
    assert runner._resume is False and runner._load_from is None
    assert runner.logger.infos == [
        f'No complete checkpoint in {tmp_path}: training from scratch.']


@pytest.mark.parametrize('kwargs', [
    dict(resume=False), dict(load_from='/given/iter_1.pth'),
    dict(loaded=True)])
def test_choose_leaves_other_runs_alone(tmp_path, kwargs):
    save(tmp_path / 'iter_2.pth')
    runner = resume_stand_in(tmp_path, **kwargs)
    before = dict(vars(runner), logger=None)
    choose_resumable_checkpoint(runner)
    assert dict(vars(runner), logger=None) == before
    assert runner.logger.infos == [] and runner.logger.warnings == []


def test_load_or_resume_resumes_the_chosen_checkpoint(tmp_path):
    good = save(tmp_path / 'iter_2.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    resumed = []
    runner = bare_runner(_resume=True, _load_from=None, _has_loaded=False,
                         _work_dir=str(tmp_path),
                         logger=recording_logger())
    runner.resume = resumed.append
    runner.load_or_resume()
    assert resumed == [good] and runner._has_loaded


# --------------------------------------------------------------------------
# build_runner


class NamedRunner:
    @classmethod
    def from_cfg(cls, cfg):
        return cls, cfg


def test_build_runner_uses_the_configs_runner_type():
    cfg = Config(dict(runner_type=NamedRunner, work_dir='/nowhere'))
    runner_cls, args = build_runner(cfg)
    assert runner_cls is NamedRunner and args.work_dir == '/nowhere'


def test_build_runner_defaults_to_tokenizer_runner(tmp_path):
    cfg = Config(dict(default_scope='fqzoo',
                      model=dict(type='CodeDataPreprocessor'),
                      work_dir=str(tmp_path),
                      experiment_name=f'build_runner_{os.getpid()}'))
    runner = build_runner(cfg)
    assert type(runner) is TokenizerRunner
    assert runner.work_dir == str(tmp_path)
    assert type(runner.model) is MODELS.get('CodeDataPreprocessor')
