"""TokenizerFSDPStrategy, clip_grad_norm_sharded, close_process_group and
use_gloo_without_cuda in process: values mutation testing showed no
in-process test pinned down (the bit-exact 2-process runs are in
test_fsdp.py and test_fsdp_resume.py; docs/testing.md lists the mutants
these tests kill).

FSDP runs here in a single-process gloo group on the CPU (FSDP falls back
to NO_SHARD for one rank). Every result is compared with the same model,
unwrapped, trained by hand or by a plain torch optimizer.
"""
import copy
import gc
import math
import re
import weakref
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
from mmengine._strategy import distributed as mmengine_distributed
from mmengine.config import Config, ConfigDict
from mmengine.optim import OptimWrapper
from torch import nn
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

from fqzoo.engine.fsdp import TokenizerFSDPStrategy, clip_grad_norm_sharded
from fqzoo.engine.runner import close_process_group, use_gloo_without_cuda


def wrapper() -> dict:
    """A ``model_wrapper`` whose LayerNorm is an FSDP unit of its own: the
    wrapped model names its weight
    '_fsdp_wrapped_module.norm._fsdp_wrapped_module.weight'. (A new dict
    each time: MMEngine's FSDP wrapper pops the policy's type.)"""
    return dict(auto_wrap_policy=dict(type='fqzoo.module_type_wrap_policy',
                                      module_types=['torch.nn.LayerNorm']))


class Net(nn.Module):

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(3, 4)
        self.norm = nn.LayerNorm(4)
        self.out = nn.Linear(4, 2)
        with torch.no_grad():  # a LayerNorm that is not the identity
            self.norm.weight.uniform_(0.5, 1.5)
            self.norm.bias.uniform_(-0.5, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.norm(self.inp(x)).tanh())


def _inputs(seed: int) -> torch.Tensor:
    return torch.randn(5, 3, generator=torch.Generator().manual_seed(seed))


def _loss(model: nn.Module, seed: int = 0) -> torch.Tensor:
    return (model(_inputs(seed)) - 0.3).square().sum()


def _grads(model: nn.Module) -> dict:
    """The gradient of :func:`_loss` of an unwrapped copy of ``model``."""
    model = copy.deepcopy(model)
    _loss(model).backward()
    return {name: p.grad for name, p in model.named_parameters()}


def _plain(values: dict) -> dict:
    return {k: v.detach().clone() for k, v in values.items()}


@pytest.fixture
def no_cuda(monkeypatch):
    """A CPU-only machine, also where a GPU is installed."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)


@pytest.fixture
def group(tmp_path, monkeypatch, no_cuda):
    """A one-process gloo group, as ``torchrun --nproc-per-node 1`` gives;
    left again whatever the test did, since other tests run in the same
    process."""
    monkeypatch.setenv('LOCAL_RANK', '0')
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/pg',
                            rank=0, world_size=1,
                            timeout=timedelta(seconds=60))
    try:
        yield
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.fixture
def init_dist_calls(monkeypatch) -> list:
    """MMEngine's ``init_dist`` (the DDP strategies' setup), recorded
    instead of run: it would set CUDA devices."""
    calls = []
    monkeypatch.setattr(mmengine_distributed, 'init_dist',
                        lambda *args, **kwargs: calls.append((args, kwargs)))
    return calls


@pytest.fixture
def no_process_group(monkeypatch):
    """No process group before the test and none left after it."""
    assert not dist.is_initialized()
    for name in ('MASTER_ADDR', 'MASTER_PORT', 'RANK', 'WORLD_SIZE'):
        monkeypatch.delenv(name, raising=False)
    try:
        yield
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


# ------------------------------------------------------------ construction

def test_strategy_keeps_fsdp_strategy_arguments():
    strategy = TokenizerFSDPStrategy(model_wrapper=wrapper(),
                                     skip_init_weights=True)
    assert strategy.model_wrapper == wrapper()
    assert strategy.skip_init_weights is True
    # MMEngine's checks of its arguments still run
    with pytest.raises(TypeError, match='skip_init_weights must be a '
                       'boolean'):
        TokenizerFSDPStrategy(skip_init_weights='yes')


# ------------------------------------------------------ process group setup

def test_cpu_torchrun_job_gets_a_gloo_group(tmp_path, no_cuda,
                                            no_process_group,
                                            init_dist_calls):
    # the launcher defaults to 'pytorch' (torchrun); the keyword arguments
    # (MMEngine's env_cfg.dist_cfg) go to init_process_group
    TokenizerFSDPStrategy()._setup_distributed(
        init_method=f'file://{tmp_path}/pg', rank=0, world_size=1,
        timeout=timedelta(seconds=60))
    assert dist.is_initialized()
    assert dist.get_backend() == 'gloo'
    assert dist.get_world_size() == 1
    assert init_dist_calls == []


def test_cpu_torchrun_job_keeps_a_group_it_has(tmp_path, group,
                                               init_dist_calls):
    default = dist.group.WORLD
    TokenizerFSDPStrategy()._setup_distributed(
        'pytorch', init_method=f'file://{tmp_path}/other', rank=0,
        world_size=1)
    assert dist.group.WORLD is default
    assert init_dist_calls == []


def test_other_launchers_keep_mmengine_setup(no_cuda, no_process_group,
                                             init_dist_calls):
    TokenizerFSDPStrategy()._setup_distributed('slurm', port=29600)
    ((launcher, backend), kwargs), = init_dist_calls
    assert launcher == 'slurm'
    # the default backend is NCCL (torch reads backend names in any case)
    assert dist.Backend(backend) == dist.Backend.NCCL
    assert kwargs == dict(port=29600)
    assert not dist.is_initialized()


def test_torchrun_job_with_cuda_keeps_mmengine_setup(monkeypatch,
                                                     no_process_group,
                                                     init_dist_calls):
    # built first: a new MMEngine logger asks for the CUDA device's id
    strategy = TokenizerFSDPStrategy()
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    strategy._setup_distributed('pytorch', 'gloo', timeout=60)
    assert init_dist_calls == [(('pytorch', 'gloo'), dict(timeout=60))]
    assert not dist.is_initialized()


def test_close_process_group_outside_a_distributed_run_does_nothing():
    assert not dist.is_initialized()
    close_process_group()
    assert not dist.is_initialized()


def test_close_process_group_leaves_the_group(group):
    close_process_group()
    assert not dist.is_initialized()


class _Cycle:
    """Holds the group in a reference cycle, as a finished Runner (its loops
    and hooks point back at it) holds its FSDP or DDP model."""

    def __init__(self):
        self.group = dist.group.WORLD
        self.me = self


def test_close_process_group_frees_a_group_held_in_a_reference_cycle(group):
    """The group is freed (its gloo threads joined) before the tool returns,
    not while the interpreter shuts down, where they can abort the rank."""
    gc.disable()  # only close_process_group may collect the cycle
    try:
        _Cycle()
        held = weakref.ref(dist.group.WORLD)
        close_process_group()
        assert not dist.is_initialized()
        assert held() is None
    finally:
        gc.enable()


# --------------------------------------------------- use_gloo_without_cuda

def test_use_gloo_without_cuda_adds_the_backend(no_cuda):
    cfg = Config(dict(model=dict(type='M')))
    use_gloo_without_cuda(cfg)
    assert cfg.to_dict() == dict(model=dict(type='M'),
                                 env_cfg=dict(dist_cfg=dict(backend='gloo')))
    assert isinstance(cfg.env_cfg, ConfigDict)


def test_use_gloo_without_cuda_replaces_only_the_backend(no_cuda):
    cfg = Config(dict(env_cfg=dict(cudnn_benchmark=True, dist_cfg=dict(
        backend='nccl', timeout=60))))
    use_gloo_without_cuda(cfg)
    assert cfg.to_dict() == dict(env_cfg=dict(cudnn_benchmark=True, dist_cfg=(
        dict(backend='gloo', timeout=60))))


def test_use_gloo_without_cuda_leaves_gpu_machines_alone(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    for env_cfg in (None, dict(dist_cfg=dict(backend='nccl'))):
        cfg = Config(dict(model=dict(type='M')) if env_cfg is None else
                     dict(env_cfg=env_cfg))
        before = copy.deepcopy(cfg.to_dict())
        use_gloo_without_cuda(cfg)
        assert cfg.to_dict() == before


# ----------------------------------------------------------- FSDP wrapping

def test_cpu_wrapping_units_and_full_state_dicts_not_offloaded(group):
    model = Net()
    state = _plain(model.state_dict())
    strategy = TokenizerFSDPStrategy(model_wrapper=wrapper())
    fsdp = strategy.prepare(model)
    # the root and the LayerNorm of the wrap policy, on the CPU
    units = FSDP.fsdp_modules(fsdp)
    assert [type(unit.module) for unit in units] == [Net, nn.LayerNorm]
    assert all(unit.compute_device == torch.device('cpu') for unit in units)
    assert all(p.device.type == 'cpu' for p in fsdp.parameters())
    settings = FSDP.get_state_dict_type(fsdp)
    assert settings.state_dict_type.name == 'FULL_STATE_DICT'
    for config in (settings.state_dict_config,
                   settings.optim_state_dict_config):
        assert config.offload_to_cpu is False
        assert config.rank0_only is True
    saved = strategy.model_state_dict()
    assert saved.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(saved[key], value), key


def test_cpu_wrapping_without_a_model_wrapper(group):
    model = Net()
    fsdp = TokenizerFSDPStrategy().prepare(model)
    assert [type(unit.module) for unit in FSDP.fsdp_modules(fsdp)] == [Net]
    assert fsdp.compute_device == torch.device('cpu')
    torch.testing.assert_close(fsdp(_inputs(0)), Net.forward(
        model, _inputs(0)))


# ------------------------------------------------------------ optimizers

def test_param_groups_are_built_on_the_unsharded_model(group):
    # decay on matrices only and a frozen LayerNorm weight chosen by its
    # unwrapped name (the wrapped name has '_fsdp_wrapped_module.' inside)
    model = Net()
    before, grads = _plain(model.state_dict()), _grads(model)
    strategy = TokenizerFSDPStrategy(model_wrapper=wrapper())
    fsdp, optim_wrapper = strategy.prepare(model, optim_wrapper=dict(
        type='OptimWrapper',
        optimizer=dict(type='SGD', lr=0.5, weight_decay=0.2),
        paramwise_cfg=dict(flat_decay_mult=0.0, custom_keys={
            'norm.weight': dict(lr_mult=0.0)})))
    optim_wrapper.update_params(_loss(fsdp))
    after = strategy.model_state_dict()
    for name, w in before.items():
        lr = 0.0 if name == 'norm.weight' else 0.5
        decay = 0.2 if w.dim() == 2 else 0.0
        expected = w - lr * (grads[name] + decay * w)
        torch.testing.assert_close(after[name], expected, msg=name)
    assert torch.equal(after['norm.weight'], before['norm.weight'])
    assert not torch.equal(after['norm.bias'], before['norm.bias'])


def test_prepare_passes_schedulers_on(group):
    strategy = TokenizerFSDPStrategy()
    _, optim_wrapper, (scheduler,) = strategy.prepare(
        Net(), optim_wrapper=dict(type='OptimWrapper',
                                  optimizer=dict(type='SGD', lr=0.5)),
        param_scheduler=dict(type='MultiStepLR', by_epoch=False,
                             milestones=[1], gamma=0.1),
        dispatch_kwargs=dict(max_iters=10))
    assert optim_wrapper.get_lr() == dict(lr=[0.5])
    scheduler.step()
    assert optim_wrapper.get_lr() == dict(lr=[pytest.approx(0.05)])


def test_optimizer_state_holds_the_plain_optimizers_groups(group):
    model = Net()
    reference = copy.deepcopy(model)
    strategy = TokenizerFSDPStrategy(model_wrapper=wrapper())
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    fsdp, optim_wrapper = strategy.prepare(
        model, optim_wrapper=OptimWrapper(optimizer))
    assert optim_wrapper.optimizer is optimizer
    optim_wrapper.update_params(_loss(fsdp))
    plain = torch.optim.AdamW(reference.parameters(), lr=0.1)
    _loss(reference).backward()
    plain.step()
    expected = plain.state_dict()
    saved = strategy.optim_state_dict()
    names = [name for name, _ in reference.named_parameters()]
    assert len(saved['param_groups']) == 1
    group_ = dict(saved['param_groups'][0])
    assert sorted(group_.pop('params')) == sorted(names)
    assert group_ == {k: v for k, v in expected['param_groups'][0].items()
                      if k != 'params'}
    for i, name in enumerate(names):
        for key, value in expected['state'][i].items():
            torch.testing.assert_close(saved['state'][name][key], value,
                                       msg=f'{name} {key}')


def test_stepped_optimizer_is_refused(group):
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    _loss(model).backward()
    optimizer.step()
    with pytest.raises(ValueError, match=re.escape(
            'the optimizer of an OptimWrapper given to TokenizerFSDPStrategy '
            'must not have stepped')):
        TokenizerFSDPStrategy().prepare(
            model, optim_wrapper=OptimWrapper(optimizer))


def _adamw(model: Net) -> torch.optim.AdamW:
    """AdamW with parameters not in the model's order (as an optimizer
    given to the strategy may have them), each group with its own
    settings."""
    return torch.optim.AdamW([
        dict(params=[model.out.weight, model.inp.bias, model.out.bias],
             lr=0.1),
        dict(params=model.norm.parameters(), lr=0.02, weight_decay=0.0),
        dict(params=[model.inp.weight], lr=0.05, betas=(0.5, 0.9))],
        lr=0.1, weight_decay=0.1)


def test_resume_loads_the_optimizer_state_onto_the_model(group):
    # AdamW step 1, saved and loaded into a new strategy, then step 2:
    # the weights of two plain AdamW steps
    model = Net()
    reference = copy.deepcopy(model)
    first = TokenizerFSDPStrategy(model_wrapper=wrapper())
    fsdp, optim_wrapper = first.prepare(
        model, optim_wrapper=OptimWrapper(_adamw(model)))
    optim_wrapper.update_params(_loss(fsdp, seed=0))
    weights, optim_state = first.model_state_dict(), first.optim_state_dict()

    restarted = Net()
    restarted.load_state_dict(weights)
    second = TokenizerFSDPStrategy(model_wrapper=wrapper())
    fsdp, optim_wrapper = second.prepare(
        restarted, optim_wrapper=OptimWrapper(_adamw(restarted)))
    second.load_optim_state_dict(optim_state)
    optim_wrapper.update_params(_loss(fsdp, seed=1))

    plain = _adamw(reference)
    for seed in (0, 1):
        plain.zero_grad()
        _loss(reference, seed=seed).backward()
        plain.step()
    resumed = second.model_state_dict()
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(resumed[name], value, msg=name)
    for mine, expected in zip(optim_wrapper.optimizer.param_groups,
                              plain.param_groups):
        assert [p.shape for p in mine['params']] == [
            p.shape for p in expected['params']]
        assert {k: v for k, v in mine.items() if k != 'params'} == {
            k: v for k, v in expected.items() if k != 'params'}


# ------------------------------------------------------- gradient clipping

@pytest.mark.parametrize('norm_type', [None, 1.0, math.inf])
def test_clipping_uses_the_whole_models_gradient(group, norm_type):
    # the optimizer updates the first layer only: FSDP.clip_grad_norm_
    # scales by the norm of every gradient of the model, torch's
    # clip_grad_norm_ would use the first layer's gradients only
    model = Net()
    before, grads = _plain(model.state_dict()), _grads(model)
    order = 2.0 if norm_type is None else norm_type
    total = torch.linalg.vector_norm(
        torch.cat([g.flatten() for g in grads.values()]), order)
    first = torch.linalg.vector_norm(torch.cat(
        [grads['inp.weight'].flatten(), grads['inp.bias'].flatten()]), order)
    max_norm = 0.05
    assert total > first > 4 * max_norm
    clip_grad = dict(max_norm=max_norm)
    if norm_type is not None:
        clip_grad['norm_type'] = norm_type
    strategy = TokenizerFSDPStrategy(model_wrapper=wrapper())
    fsdp, optim_wrapper = strategy.prepare(model, optim_wrapper=OptimWrapper(
        torch.optim.SGD(model.inp.parameters(), lr=1.0),
        clip_grad=clip_grad))
    optim_wrapper.update_params(_loss(fsdp))
    after = strategy.model_state_dict()
    scale = max_norm / (total + 1e-6)
    for name, w in before.items():
        expected = w - scale * grads[name] if name.startswith('inp.') else w
        torch.testing.assert_close(after[name], expected, msg=name)


def test_clip_by_value_is_left_to_torch(group):
    model = Net()
    before, grads = _plain(model.state_dict()), _grads(model)
    clip_value = 0.05
    assert all(g.abs().max() > 2 * clip_value for g in grads.values())
    strategy = TokenizerFSDPStrategy(model_wrapper=wrapper())
    fsdp, optim_wrapper = strategy.prepare(model, optim_wrapper=dict(
        type='OptimWrapper', optimizer=dict(type='SGD', lr=0.5),
        clip_grad=dict(type='value', clip_value=clip_value)))
    optim_wrapper.update_params(_loss(fsdp))
    after = strategy.model_state_dict()
    for name, w in before.items():
        expected = w - 0.5 * grads[name].clamp(-clip_value, clip_value)
        torch.testing.assert_close(after[name], expected, msg=name)


def test_optim_wrapper_config_built_for_a_prepared_model(group):
    model = Net()
    before, grads = _plain(model.state_dict()), _grads(model)
    total = torch.linalg.vector_norm(
        torch.cat([g.flatten() for g in grads.values()]))
    strategy = TokenizerFSDPStrategy(model_wrapper=wrapper())
    fsdp = strategy.prepare(model)
    optim_wrapper = strategy.build_optim_wrapper(dict(
        type='OptimWrapper', optimizer=dict(type='SGD', lr=0.5),
        clip_grad=dict(max_norm=0.1)), fsdp)
    assert total > 0.4
    optim_wrapper.update_params(_loss(fsdp))
    after = strategy.model_state_dict()
    for name, w in before.items():
        expected = w - 0.5 * grads[name] * 0.1 / (total + 1e-6)
        torch.testing.assert_close(after[name], expected, msg=name)


def test_clip_grad_norm_sharded_returns_the_whole_norm(group):
    model = Net()
    grads = _grads(model)
    fsdp = TokenizerFSDPStrategy(model_wrapper=wrapper()).prepare(model)
    _loss(fsdp).backward()
    flat = torch.cat([g.flatten() for g in grads.values()])
    # each call returns the norm before clipping and scales the gradients
    # by max_norm / (norm + 1e-6)
    for norm_type in (2.0, 1.0):
        norm = torch.linalg.vector_norm(flat, norm_type)
        assert norm > 3.0
        returned = clip_grad_norm_sharded(fsdp, None, 3.0, norm_type)
        torch.testing.assert_close(returned, norm)
        flat = flat * (3.0 / (norm + 1e-6))
    # the norm type defaults to 2
    torch.testing.assert_close(clip_grad_norm_sharded(fsdp, None, 10.0),
                               torch.linalg.vector_norm(flat))
