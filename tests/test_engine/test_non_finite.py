"""NonFiniteGuardHook: a NaN/Inf loss or gradient at a known iteration
skips exactly that optimizer update (weights and optimizer state equal to
before it), the log names the loss and the iteration, and the policies
stop with a checkpoint or raise."""
import copy
import math
from pathlib import Path

import pytest
import torch
from conftest import REPO, write_tiny_config
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from torch import nn
from torch.utils.data import Dataset

from fqzoo.engine.hooks import NonFiniteError, NonFiniteGuardHook
from fqzoo.engine.runner import TokenizerRunner, build_runner
from fqzoo.models.tokenizers.image_tokenizer import ImageTokenizer
from fqzoo.registry import MODELS


@pytest.fixture(autouse=True)
def restore_torch_determinism():
    """The tiny config switches torch to deterministic algorithms."""
    enabled = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(enabled)


@MODELS.register_module(name='_NaNLossTokenizer', force=True)
class NaNLossTokenizer(ImageTokenizer):
    """``ImageTokenizer`` whose ``loss_rec`` is NaN at the (0-based)
    iterations ``nan_iters``."""

    def __init__(self, nan_iters=(), **kwargs) -> None:
        super().__init__(**kwargs)
        self.nan_iters = set(nan_iters)

    def _autoencoder_losses(self, images, recon, qout):
        losses = super()._autoencoder_losses(images, recon, qout)
        if self._current_iter() in self.nan_iters:
            losses['loss_rec'] = losses['loss_rec'] * math.nan
        return losses


class Snapshots(Hook):
    """Parameters and optimizer state before and after each iteration."""

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self.before, self.after = {}, {}

    @staticmethod
    def _take(runner) -> dict:
        return dict(params={k: v.detach().clone()
                            for k, v in runner.model.named_parameters()},
                    optim=copy.deepcopy(runner.optim_wrapper.state_dict()))

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.before[runner.iter] = self._take(runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.after[runner.iter] = self._take(runner)


def tokenizer_runner(tmp_path: Path, *, nan_iters=(), guard=None,
                     **kwargs) -> TokenizerRunner:
    tmp_path.mkdir(exist_ok=True)
    config = tmp_path / f'{tmp_path.parent.name}_{tmp_path.name}.py'
    cfg = Config.fromfile(write_tiny_config(config, tmp_path / 'work',
                                            checkpoint_interval=100,
                                            **kwargs))
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    cfg.model.type = '_NaNLossTokenizer'
    cfg.model.nan_iters = list(nan_iters)
    if guard is not None:
        cfg.default_hooks.non_finite = guard
    return build_runner(cfg)


def log_text(runner) -> str:
    return '\n'.join(p.read_text() for p in Path(runner.log_dir).glob('*.log'))


def equal_trees(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(equal_trees(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(equal_trees(x, y) for x, y in zip(a, b))
    if torch.is_tensor(a):
        return torch.equal(a, b)
    return a == b


def split(params: dict, prefix: str = 'discriminator.'):
    disc = {k: v for k, v in params.items() if k.startswith(prefix)}
    rest = {k: v for k, v in params.items() if not k.startswith(prefix)}
    assert disc and rest
    return rest, disc


def test_nan_loss_skips_that_update_only(tmp_path):
    """loss_rec is NaN at iteration 3 (0-based 2): the autoencoder update
    of that iteration is skipped (weights and Adam state as before it), the
    discriminator's, whose loss is finite, is applied, and training goes
    on."""
    runner = tokenizer_runner(tmp_path, nan_iters=[2], max_iters=4)
    snaps = Snapshots()
    runner.register_hook(snaps)
    runner.train()
    ae_before, disc_before = split(snaps.before[2]['params'])
    ae_after, disc_after = split(snaps.after[2]['params'])
    assert equal_trees(ae_before, ae_after)
    assert not equal_trees(disc_before, disc_after)
    assert equal_trees(snaps.before[2]['optim']['autoencoder'],
                       snaps.after[2]['optim']['autoencoder'])
    assert not equal_trees(snaps.before[2]['optim']['discriminator'],
                           snaps.after[2]['optim']['discriminator'])
    for it in (1, 3):  # the iterations around it do update
        assert not equal_trees(split(snaps.before[it]['params'])[0],
                               split(snaps.after[it]['params'])[0])
    log = log_text(runner)
    assert 'Non-finite values at iteration 3: loss=nan, loss_rec=nan; ' \
           'skipped the update of autoencoder (loss nan).' in log
    assert 'iteration 2:' not in log and 'iteration 4:' not in log
    assert 'discriminator (' not in log
    guard = next(h for h in runner.hooks
                 if isinstance(h, NonFiniteGuardHook))
    assert guard.consecutive == 0


class NaNGradient(Hook):
    """Makes the gradient of one parameter NaN at one iteration."""

    def __init__(self, name: str, iteration: int) -> None:
        self.name, self.iteration, self.handle = name, iteration, None

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == self.iteration:
            param = dict(runner.model.named_parameters())[self.name]
            self.handle = param.register_hook(lambda g: g * math.nan)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if self.handle is not None:
            self.handle.remove()
            self.handle = None


def test_nan_gradient_names_the_parameter(tmp_path):
    runner = tokenizer_runner(tmp_path, max_iters=2, disc_start=100)
    name = next(n for n, _ in runner.model.named_parameters()
                if n.startswith('decoder.'))
    snaps = Snapshots()
    runner.register_hook(snaps)
    runner.register_hook(NaNGradient(name, iteration=1))
    runner.train()
    assert equal_trees(snaps.before[1], snaps.after[1])
    assert not equal_trees(snaps.before[0]['params'],
                           snaps.after[0]['params'])
    log = log_text(runner)
    assert (f'iteration 2: no non-finite loss in the outputs; skipped the '
            f'update of autoencoder (gradients of {name})') in log


@pytest.mark.parametrize('policy,max_consecutive,stop_at', [
    ('skip', 2, 3), ('stop', 10, 2)])
def test_stops_with_a_checkpoint(tmp_path, policy, max_consecutive, stop_at):
    """loss_rec NaN from iteration 2 on: 'skip' with max_consecutive=2
    stops after iteration 3, 'stop' after iteration 2, each with
    iter_<n>.pth holding the weights trained by iteration 1 only."""
    runner = tokenizer_runner(
        tmp_path, nan_iters=range(1, 6), max_iters=6, disc_start=100,
        guard=dict(type='NonFiniteGuardHook', policy=policy,
                   max_consecutive=max_consecutive))
    snaps = Snapshots()
    runner.register_hook(snaps)
    with pytest.raises(NonFiniteError) as err:
        runner.train()
    work = tmp_path / 'work'
    path = work / f'iter_{stop_at}.pth'
    message = str(err.value)
    assert f'Non-finite values at iteration {stop_at}: loss=nan, ' \
           f'loss_rec=nan;' in message
    assert f'Training stopped; saved the weights from before the bad ' \
           f'update(s) to {path}' in message
    assert max(snaps.after) == stop_at - 1
    saved = torch.load(path, weights_only=True)
    assert saved['meta']['iter'] == stop_at
    for key, value in snaps.after[0]['params'].items():
        assert torch.equal(saved['state_dict'][key], value), key
    assert (work / 'last_checkpoint').read_text() == str(path)


def test_policy_raise_raises_without_checkpoint(tmp_path):
    runner = tokenizer_runner(
        tmp_path, nan_iters=[1], max_iters=4,
        guard=dict(type='NonFiniteGuardHook', policy='raise'))
    snaps = Snapshots()
    runner.register_hook(snaps)
    with pytest.raises(NonFiniteError, match=r'iteration 2: loss=nan, '
                       r'loss_rec=nan; skipped the update of autoencoder '
                       r'\(loss nan\)'):
        runner.train()
    assert equal_trees(split(snaps.before[1]['params'])[0],
                       split(snaps.after[1]['params'])[0])
    assert not list((tmp_path / 'work').glob('iter_*.pth'))


class InfLossModel(BaseModel):
    """A linear model with one plain optimizer (the generators' path:
    ``BaseModel.train_step``) whose loss is infinite at iteration 2."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        loss = self.linear(inputs).pow(2).mean()
        if MessageHub.get_current_instance().get_info('iter') == 1:
            loss = loss * math.inf
        return dict(loss_mse=loss)


class Ones(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> dict:
        return dict(inputs=torch.ones(2))


def test_single_optimizer_inf_loss(tmp_path):
    runner = TokenizerRunner(
        model=InfLossModel(), work_dir=str(tmp_path),
        train_dataloader=dict(dataset=Ones(), batch_size=2,
                              sampler=dict(type='DefaultSampler'),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=3),
        default_hooks=dict(non_finite=dict(type='NonFiniteGuardHook')),
        default_scope='fqzoo')
    snaps = Snapshots()
    runner.register_hook(snaps)
    runner.train()
    assert equal_trees(snaps.before[1], snaps.after[1])
    assert not equal_trees(snaps.before[2]['params'],
                           snaps.after[2]['params'])
    assert ('iteration 2: loss=inf, loss_mse=inf; skipped the update of '
            'optimizer (loss inf)') in log_text(runner)


def test_guard_on_by_default_and_can_be_turned_off(tmp_path):
    for base in ('default_runtime.py', 'generator_runtime.py'):
        hooks = Config.fromfile(REPO / 'configs' / '_base_' / base
                                ).default_hooks
        assert hooks.non_finite == dict(type='NonFiniteGuardHook',
                                        policy='skip', max_consecutive=10)
    on = tokenizer_runner(tmp_path / 'on')
    assert sum(isinstance(h, NonFiniteGuardHook) for h in on.hooks) == 1
    off = tokenizer_runner(tmp_path / 'off', extra='default_hooks = dict('
                           'non_finite=None)')
    assert not any(isinstance(h, NonFiniteGuardHook) for h in off.hooks)
    with pytest.raises(ValueError, match='policy must be one of'):
        NonFiniteGuardHook(policy='ignore')
