"""TokenizerFlexibleRunner and ShardedEMAHook in process: behaviour that
mutation testing showed only the two-process torchrun tests
(test_fsdp*.py) reached, so no in-process test pinned it down
(docs/testing.md lists the mutants these tests kill).

An FSDP run here is one gloo process (world size 1, a ``file://`` process
group set up and destroyed by a fixture) training a two-layer stand-in
model with SGD; its reference is the same model trained by a plain torch
loop, and the EMA reference is the docstring formula of MMEngine's
``ExponentialMovingAverage`` worked out from those weights
(``ema_1 = w_1``, ``ema_t = (1 - m) ema_(t-1) + m w_t``). The runner's
hook and checkpoint logic is also called on stand-in runners and
strategies, and ``_gathered`` / ``_scattered`` on plain modules.
"""
import contextlib
import os.path as osp
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
from mmengine._strategy import DDPStrategy, SingleDeviceStrategy
from mmengine.hooks import CheckpointHook, EMAHook, Hook, LoggerHook
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope
from mmengine.runner import FlexibleRunner
from torch import nn
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.utils.data import Dataset

from fqzoo.engine.flexible_runner import TokenizerFlexibleRunner
from fqzoo.engine.fsdp import TokenizerFSDPStrategy
from fqzoo.engine.hooks import AtomicCheckpointHook
from fqzoo.engine.hooks.sharded_ema import (
    LocalShards,
    ShardedEMAHook,
    _gathered,
    _scattered,
)
from fqzoo.errors import InputKeyError

MOMENTUM = 0.25
LR = 0.5
ITERS = 3
PREFIX = '_fsdp_wrapped_module.'


class TwoLayers(BaseModel):
    """3 -> 4 -> 2 with a tanh; the loss pulls both outputs to 1."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 4)
        self.b = nn.Linear(4, 2)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.b(torch.tanh(self.a(torch.stack(inputs))))
        if mode == 'loss':
            return dict(loss=((out - 1) ** 2).mean())
        return out


class Points(Dataset):
    """8 fixed 3-vectors."""

    def __len__(self):
        return 8

    def __getitem__(self, index):
        gen = torch.Generator().manual_seed(100 + index)
        return dict(inputs=torch.randn(3, generator=gen) * 2)


class Recorder(Hook):
    """What the run holds: after ``before_run`` (at ``before_train``) and
    after each iteration's checkpoint (lowest priority)."""

    priority = 'LOWEST'

    def __init__(self):
        self.start = None
        self.iters = []

    def _state(self, runner):
        ema = next(h for h in runner.hooks if isinstance(h, EMAHook))
        return dict(
            weights={name.replace(PREFIX, ''): p.detach().clone()
                     for name, p in runner.model.named_parameters()},
            ema=[p.detach().clone()
                 for p in ema.ema_model.module.parameters()],
            steps=int(ema.ema_model.steps))

    def before_train(self, runner):
        self.start = self._state(runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.iters.append(self._state(runner))


def _initial_weights() -> dict:
    torch.manual_seed(3)
    return {k: v.detach().clone() for k, v in TwoLayers().state_dict().items()}


def _reference(init: dict) -> list:
    """The weights after each of ITERS SGD steps of a plain torch loop over
    the batches the runner draws (items 0-1, 2-3, 4-5)."""
    model = TwoLayers()
    model.load_state_dict(init)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    data = Points()
    weights = []
    for i in range(ITERS):
        loss = model([data[2 * i]['inputs'], data[2 * i + 1]['inputs']],
                     mode='loss')['loss']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        weights.append({k: v.detach().clone()
                        for k, v in model.state_dict().items()})
    return weights


def _ema_reference(weights: list) -> list:
    """ExponentialMovingAverage's docstring formula: the first update
    copies, then ``(1 - m) * ema + m * w``."""
    averages = [dict(weights[0])]
    for w in weights[1:]:
        averages.append({k: (1 - MOMENTUM) * averages[-1][k] + MOMENTUM * v
                         for k, v in w.items()})
    return averages


@contextlib.contextmanager
def _one_process_group(folder: Path):
    """A gloo process group of one process, destroyed whatever happens."""
    assert not dist.is_initialized(), 'a process group was left behind'
    folder.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('LOCAL_RANK', '0')
        dist.init_process_group('gloo', init_method=f'file://{folder}/pg',
                                rank=0, world_size=1)
        try:
            yield
        finally:
            dist.destroy_process_group()


@pytest.fixture
def process_group(tmp_path):
    with _one_process_group(tmp_path / 'pg'):
        yield


def _fsdp_runner(work_dir: Path, init: dict, name: str, *, max_iters=ITERS,
                 **kwargs) -> TokenizerFlexibleRunner:
    model = TwoLayers()
    model.load_state_dict(init)
    return TokenizerFlexibleRunner(
        model=model, work_dir=str(work_dir), experiment_name=name,
        train_dataloader=dict(
            dataset=Points(), batch_size=2,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=LR)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        strategy=dict(type='TokenizerFSDPStrategy'), launcher='pytorch',
        custom_hooks=[dict(type='EMAHook', momentum=MOMENTUM), Recorder()],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1,
                                           by_epoch=False)),
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        randomness=dict(seed=0), log_level='WARNING', default_scope='fqzoo',
        **kwargs)


def _recorder(runner) -> Recorder:
    return next(h for h in runner.hooks if isinstance(h, Recorder))


def _sharded_ema(runner) -> ShardedEMAHook:
    hooks = [h for h in runner.hooks if isinstance(h, EMAHook)]
    assert len(hooks) == 1 and type(hooks[0]) is ShardedEMAHook
    return hooks[0]


def _load(path) -> dict:
    return torch.load(path, map_location='cpu', weights_only=True)


def _assert_same(actual: dict, expected: dict):
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(actual[key], value, msg=key)


def _in_order(weights: dict) -> list:
    """A state dict's values in TwoLayers' parameter order."""
    return [weights[k] for k in ('a.weight', 'a.bias', 'b.weight', 'b.bias')]


@pytest.fixture(scope='module')
def fsdp_run(tmp_path_factory):
    """ITERS iterations of an FSDP run with an EMAHook, a checkpoint after
    each; with the plain-torch references."""
    root = tmp_path_factory.mktemp('fsdp_ema_run')
    init = _initial_weights()
    with _one_process_group(root / 'pg'):
        runner = _fsdp_runner(root / 'work', init, f'fsdp_ema_{root.name}')
        runner.train()
        weights = _reference(init)
        run = SimpleNamespace(
            root=root, work=root / 'work', init=init, weights=weights,
            ema=_ema_reference(weights), recorder=_recorder(runner),
            hook=_sharded_ema(runner), is_fsdp=isinstance(runner.model, FSDP),
            hooks=list(runner.hooks))
    # the weights move far enough that the average and the weights differ
    for w, avg in zip(weights[1:], run.ema[1:]):
        assert (w['b.bias'] - avg['b.bias']).abs().min() > 1e-3
    return run


def test_fsdp_run_trains_like_plain_torch_with_a_sharded_ema(fsdp_run):
    assert fsdp_run.is_fsdp
    assert any(isinstance(h, AtomicCheckpointHook) for h in fsdp_run.hooks)
    assert fsdp_run.hook.ema_cfg['momentum'] == MOMENTUM
    # the live weights after each iteration (after its checkpoint): the
    # average gathered for the checkpoint was put back
    for state, expected in zip(fsdp_run.recorder.iters, fsdp_run.weights):
        _assert_same(state['weights'], expected)
    assert [s['steps'] for s in fsdp_run.recorder.iters] == [1, 2, 3]
    for state, avg in zip(fsdp_run.recorder.iters, fsdp_run.ema):
        for value, expected in zip(state['ema'], _in_order(avg)):
            torch.testing.assert_close(value, expected)


def test_fsdp_checkpoints_hold_the_average_and_the_training_weights(
        fsdp_run):
    """As EMAHook writes them: ``state_dict`` the average,
    ``ema_state_dict`` the training weights as ``module.<name>`` and
    ``steps``; saved atomically (no temporary file left)."""
    names = sorted(p.name for p in fsdp_run.work.iterdir()
                   if p.suffix == '.pth' or p.name.endswith('.tmp'))
    assert names == ['iter_1.pth', 'iter_2.pth', 'iter_3.pth']
    for i in range(ITERS):
        ckpt = _load(fsdp_run.work / f'iter_{i + 1}.pth')
        _assert_same(ckpt['state_dict'], fsdp_run.ema[i])
        ema = dict(ckpt['ema_state_dict'])
        assert ema.pop('steps').item() == i + 1
        _assert_same(ema, {f'module.{k}': v
                           for k, v in fsdp_run.weights[i].items()})
        assert ckpt['meta']['iter'] == i + 1


def test_fsdp_resume_restores_the_average_and_the_weights(fsdp_run, tmp_path,
                                                          process_group):
    runner = _fsdp_runner(tmp_path / 'work', fsdp_run.init,
                          f'fsdp_resume_{tmp_path.name}', resume=True,
                          load_from=str(fsdp_run.work / 'iter_2.pth'))
    runner.train()
    start = _recorder(runner).start
    # training resumes from the training weights, the average from the
    # checkpoint's average and step count
    _assert_same(start['weights'], fsdp_run.weights[1])
    assert start['steps'] == 2
    for value, expected in zip(start['ema'], _in_order(fsdp_run.ema[1])):
        torch.testing.assert_close(value, expected)
    ckpt = _load(tmp_path / 'work' / 'iter_3.pth')
    _assert_same(ckpt['state_dict'], fsdp_run.ema[2])
    assert ckpt['ema_state_dict']['steps'].item() == 3
    # a later run of the same runner (val, test) starts a new average from
    # the weights it has: the resumed one is used once
    hook = _sharded_ema(runner)
    hook.before_run(runner)
    assert hook.ema_model.steps.item() == 0
    for avg, value in zip(hook.ema_model.module.parameters(),
                          _in_order(fsdp_run.weights[2])):
        torch.testing.assert_close(avg.detach(), value)


def test_fsdp_load_from_starts_from_the_average(fsdp_run, tmp_path,
                                                process_group):
    """``load_from`` without resume loads ``state_dict`` (the average, what
    a deployment loads) and the EMA starts over from it."""
    runner = _fsdp_runner(tmp_path / 'work', fsdp_run.init,
                          f'fsdp_load_{tmp_path.name}', max_iters=1,
                          load_from=str(fsdp_run.work / 'iter_2.pth'))
    runner.train()
    start = _recorder(runner).start
    _assert_same(start['weights'], fsdp_run.ema[1])
    assert start['steps'] == 0
    for value, expected in zip(start['ema'], _in_order(fsdp_run.ema[1])):
        torch.testing.assert_close(value, expected)


def test_a_hook_before_its_run_has_no_average():
    hook = ShardedEMAHook(momentum=MOMENTUM)
    assert hook.ema_model is None
    assert hook.ema_cfg == dict(type='ExponentialMovingAverage',
                                momentum=MOMENTUM)


def test_local_shards_are_the_models_own_parameters():
    model = TwoLayers()
    shards = LocalShards(model)
    assert [id(p) for p in shards.parameters()] == \
        [id(p) for p in model.parameters()]


class _Extra(nn.Module):
    """A module with a non-tensor extra state in its state dict."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1., 2., 3.]))
        self.v = nn.Parameter(torch.tensor([[4., 5.], [6., 7.]]))

    def get_extra_state(self):
        return {'note': 'kept'}

    def set_extra_state(self, state):
        pass


def _plain_runner(model: nn.Module) -> SimpleNamespace:
    """A stand-in runner whose strategy reads and writes the module's own
    state dict (as a single-device strategy does: its values are the
    parameters themselves)."""
    strategy = SimpleNamespace(model_state_dict=model.state_dict,
                               load_model_state_dict=model.load_state_dict)
    return SimpleNamespace(model=model, strategy=strategy)


def test_gathered_state_dict_of_other_shards_then_puts_params_back():
    model = _Extra()
    shards = [torch.tensor([-1., -2., -3.]),
              torch.tensor([[9., 8.], [7., 6.]])]
    state = _gathered(_plain_runner(model), shards)
    assert set(state) == {'w', 'v', '_extra_state'}
    assert torch.equal(state['w'], shards[0])
    assert torch.equal(state['v'], shards[1])
    assert state['_extra_state'] == {'note': 'kept'}
    assert torch.equal(model.w.detach(), torch.tensor([1., 2., 3.]))
    assert torch.equal(model.v.detach(), torch.tensor([[4., 5.], [6., 7.]]))


def test_scattered_shards_of_a_state_dict_then_puts_params_back():
    model = _Extra()
    weights = {'w': torch.tensor([-1., -2., -3.]),
               'v': torch.tensor([[9., 8.], [7., 6.]]),
               '_extra_state': {'note': 'kept'}}
    shards = _scattered(_plain_runner(model), weights)
    assert len(shards) == 2
    assert torch.equal(shards[0], weights['w'])
    assert torch.equal(shards[1], weights['v'])
    assert torch.equal(model.w.detach(), torch.tensor([1., 2., 3.]))
    assert torch.equal(model.v.detach(), torch.tensor([[4., 5.], [6., 7.]]))


# TokenizerFlexibleRunner's own methods on a runner that was not built
# (object.__new__): they read only what each test sets


def _bare_runner(strategy=None, **attrs) -> TokenizerFlexibleRunner:
    runner = object.__new__(TokenizerFlexibleRunner)
    runner._hooks = []
    runner.strategy = strategy
    for key, value in attrs.items():
        setattr(runner, key, value)
    return runner


def _fsdp_strategy():
    return object.__new__(TokenizerFSDPStrategy)


@pytest.fixture
def mmengine_scope():
    """No fqzoo default scope: fqzoo's strategy names must resolve by
    themselves (the runner builds its strategy before its scope)."""
    with DefaultScope.overwrite_default_scope('mmengine'):
        yield


def _build_strategy(tmp_path, strategy, *args, **kwargs):
    runner = _bare_runner(_train_dataloader=None, _work_dir=str(tmp_path),
                          _auto_scale_lr=None)
    kwargs.setdefault('log_level', 'WARNING')
    kwargs.setdefault('experiment_name', f'build_{tmp_path.name}')
    return runner.build_strategy(strategy, *args, **kwargs)


def test_build_strategy_finds_fqzoo_strategies_by_name(tmp_path,
                                                       mmengine_scope):
    config = dict(type='TokenizerFSDPStrategy',
                  model_wrapper=dict(use_orig_params=False))
    strategy = _build_strategy(tmp_path, config, launcher='none',
                               randomness=dict(seed=7))
    assert type(strategy) is TokenizerFSDPStrategy
    assert strategy.model_wrapper == dict(use_orig_params=False)
    assert strategy.seed == 7
    assert strategy.launcher == 'none'
    assert config == dict(type='TokenizerFSDPStrategy',
                          model_wrapper=dict(use_orig_params=False))
    # the strategy's own arguments reach it
    with pytest.raises(ValueError, match='full state dicts only'):
        _build_strategy(tmp_path, dict(type='TokenizerFSDPStrategy',
                                       state_dict_cfg='local'),
                        launcher='none', randomness=dict(seed=7))


def test_build_strategy_takes_the_base_arguments_by_position(tmp_path,
                                                             mmengine_scope):
    strategy = _build_strategy(tmp_path, dict(type='TokenizerFSDPStrategy'),
                               'none', dict(seed=11))
    assert type(strategy) is TokenizerFSDPStrategy
    assert strategy.seed == 11


def test_build_strategy_of_a_class_or_of_none(tmp_path, mmengine_scope):
    strategy = _build_strategy(tmp_path, dict(type=TokenizerFSDPStrategy),
                               launcher='none', randomness=dict(seed=5))
    assert type(strategy) is TokenizerFSDPStrategy and strategy.seed == 5
    strategy = _build_strategy(tmp_path, None, launcher='none',
                               randomness=dict(seed=5))
    assert type(strategy) is SingleDeviceStrategy


def test_build_strategy_refuses_an_unknown_name(tmp_path, mmengine_scope):
    with pytest.raises(InputKeyError) as error:
        _build_strategy(tmp_path, dict(type='NoSuchStrategy'),
                        launcher='none', randomness=dict(seed=5))
    message = error.value.args[0]
    head = 'Unknown strategy type "NoSuchStrategy". Known strategy types: '
    assert message.startswith(head)
    names = message[len(head):].split(', ')
    assert names == sorted(names)
    assert {'TokenizerFSDPStrategy', 'FSDPStrategy', 'DDPStrategy',
            'SingleDeviceStrategy'} <= set(names)


def test_register_hooks_under_fsdp(tmp_path):
    """Config default hooks through fqzoo's rules (CheckpointHook made
    atomic, None removes a hook), custom hooks kept, an EMAHook config in
    any spelling built as ShardedEMAHook with its arguments, fqzoo's
    hooks added."""
    mine = Recorder()
    runner = _bare_runner(_fsdp_strategy())
    runner.register_hooks(
        dict(checkpoint=dict(type='CheckpointHook', interval=7),
             logger=None),
        [dict(type='EMAHook', momentum=0.125), mine,
         dict(type='EmptyCacheHook')])
    types = [type(h).__name__ for h in runner.hooks]
    assert 'LoggerHook' not in types
    checkpoint = [h for h in runner.hooks if isinstance(h, CheckpointHook)]
    assert len(checkpoint) == 1
    assert type(checkpoint[0]) is AtomicCheckpointHook
    assert checkpoint[0].interval == 7
    ema = [h for h in runner.hooks if isinstance(h, EMAHook)]
    assert [type(h) for h in ema] == [ShardedEMAHook]
    assert ema[0].ema_cfg['momentum'] == 0.125
    assert sum(h is mine for h in runner.hooks) == 1
    assert 'EmptyCacheHook' in types
    for name in ('SafeCheckpointHook', 'RandomStateHook', 'TokenLayoutHook'):
        assert types.count(name) == 1, name


@pytest.mark.parametrize('spelling', ['EMAHook', 'mmengine.EMAHook',
                                      EMAHook])
def test_every_spelling_of_ema_hook_is_sharded_under_fsdp(spelling):
    runner = _bare_runner(_fsdp_strategy())
    runner.register_custom_hooks([
        dict(type=spelling, momentum=0.125, priority='ABOVE_NORMAL'),
        dict(type='EmptyCacheHook')])
    assert [type(h).__name__ for h in runner.hooks] == [
        'ShardedEMAHook', 'EmptyCacheHook']
    assert runner.hooks[0].ema_cfg['momentum'] == 0.125


def test_ema_hook_stays_itself_without_fsdp():
    runner = _bare_runner(object.__new__(DDPStrategy))
    runner.register_custom_hooks([dict(type='EMAHook', momentum=0.125)])
    assert [type(h) for h in runner.hooks] == [EMAHook]


def test_default_hooks_without_a_config():
    runner = _bare_runner(_fsdp_strategy())
    runner.register_default_hooks()
    checkpoint = [h for h in runner.hooks if isinstance(h, CheckpointHook)]
    assert [type(h) for h in checkpoint] == [AtomicCheckpointHook]
    assert any(isinstance(h, LoggerHook) for h in runner.hooks)


def test_load_or_resume_takes_the_newest_complete_checkpoint(tmp_path):
    for i in (1, 2, 3):
        torch.save(dict(i=i), tmp_path / f'iter_{i}.pth')
    data = (tmp_path / 'iter_3.pth').read_bytes()
    (tmp_path / 'iter_3.pth').write_bytes(data[:len(data) // 2])
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_3.pth'))
    logger = MMLogger.get_instance(f'resume_{tmp_path.name}',
                                   log_level='ERROR')
    runner = _bare_runner(SimpleNamespace(logger=logger), _resume=True,
                          _load_from=None, _has_loaded=False,
                          _work_dir=str(tmp_path))
    resumed = []
    runner.resume = lambda filename, **kwargs: resumed.append(filename)
    runner.load_or_resume()
    assert resumed == [str(tmp_path / 'iter_2.pth')]


class _SaveSpy:
    """Stands in for MMEngine's FlexibleRunner.save_checkpoint: records
    its arguments and writes a small file to a local path."""

    def __init__(self):
        self.calls = []

    def __call__(self, out_dir, filename, file_client_args=None,
                 **kwargs):
        self.calls.append((out_dir, filename, file_client_args, kwargs))
        if '://' not in out_dir:
            torch.save(dict(saved_as=filename), osp.join(out_dir, filename))


@pytest.fixture
def save_spy(monkeypatch, tmp_path):
    spy = _SaveSpy()
    monkeypatch.setattr(FlexibleRunner, 'save_checkpoint', spy)
    # a relative path that goes wrong lands here, not in the repository
    (tmp_path / 'cwd').mkdir()
    monkeypatch.chdir(tmp_path / 'cwd')
    return spy


def test_fsdp_saves_under_a_temporary_name_then_renames(tmp_path, save_spy):
    out = tmp_path / 'out'
    out.mkdir()
    runner = _bare_runner(_fsdp_strategy())
    runner.save_checkpoint(str(out), 'iter_4.pth', save_optimizer=False,
                           meta=dict(x=1), by_epoch=False)
    assert save_spy.calls == [(str(out), '.iter_4.pth.tmp', None, dict(
        save_optimizer=False, meta=dict(x=1), by_epoch=False))]
    assert sorted(p.name for p in out.iterdir()) == ['iter_4.pth']
    assert _load(out / 'iter_4.pth') == dict(saved_as='.iter_4.pth.tmp')
    assert list((tmp_path / 'cwd').iterdir()) == []


@pytest.mark.parametrize('case', ['not_fsdp', 'file_client_args',
                                  'remote_dir', 'remote_backend_args'])
def test_other_saves_are_mmengines(tmp_path, save_spy, case):
    """DDP, a ``file_client_args``, a remote folder or ``backend_args``
    naming a remote backend: MMEngine's save with the same arguments."""
    out = str(tmp_path / 'out')
    Path(out).mkdir()
    strategy = _fsdp_strategy()
    client, kwargs = None, dict(by_epoch=False)
    if case == 'not_fsdp':
        strategy = object.__new__(DDPStrategy)
    elif case == 'file_client_args':
        client = dict(backend='local')
    elif case == 'remote_dir':
        out = 'http://example.com/work'
    else:
        kwargs['backend_args'] = dict(backend='http')
    runner = _bare_runner(strategy)
    runner.save_checkpoint(out, 'iter_4.pth', client, **kwargs)
    assert save_spy.calls == [(out, 'iter_4.pth', client, kwargs)]
    if '://' not in out:
        assert sorted(p.name for p in Path(out).iterdir()) == ['iter_4.pth']


def test_file_client_args_with_backend_args_is_mmengines_error(tmp_path):
    """MMEngine refuses both at once; an FSDP run does too."""
    class AtIterZero(TokenizerFlexibleRunner):
        epoch = iter = 0

    runner = object.__new__(AtIterZero)
    runner.strategy = _fsdp_strategy()
    with pytest.raises(ValueError, match='cannot be set at the same time'):
        runner.save_checkpoint(str(tmp_path), 'iter_1.pth',
                               dict(backend='local'),
                               backend_args=dict(backend='local'))

