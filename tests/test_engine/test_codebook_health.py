import logging
from types import SimpleNamespace

import torch
from mmengine.logging import MessageHub

from fqzoo.engine.hooks.codebook_health import CodebookHealthHook
from fqzoo.models.quantizers import FactorizedQuantizer
from fqzoo.registry import HOOKS


class TinyModel(torch.nn.Module):

    def __init__(self):
        super().__init__()
        self.quantizer = FactorizedQuantizer(2, dict(
            type='VectorQuantizer', codebook_size=16, embed_dim=2,
            l2_norm=False, dead_code_steps=2, init_range=1.0))


class FakeWrapper(torch.nn.Module):
    """Stands in for a DDP wrapper: ``is_model_wrapper`` checks the
    MODEL_WRAPPERS registry, so patch it in for the test."""

    def __init__(self, module):
        super().__init__()
        self.module = module


def fake_runner(model, iteration):
    logger = logging.getLogger('codebook_health_test')
    hub = MessageHub.get_instance('codebook_health_test')
    return SimpleNamespace(model=model, iter=iteration, logger=logger,
                           message_hub=hub)


def train_steps(model, steps=3):
    torch.manual_seed(0)
    z = torch.randn(1, 4, 2, 2) + 10  # a few codes only
    model.train()
    for _ in range(steps):
        model.quantizer(z)


def test_hook_is_registered():
    hook = HOOKS.build(dict(type='CodebookHealthHook', interval=5))
    assert isinstance(hook, CodebookHealthHook)


def test_logs_every_sub_codebook_and_warns(caplog):
    model = TinyModel()
    train_steps(model)
    runner = fake_runner(model, iteration=9)
    hook = CodebookHealthHook(interval=10, usage_floor=0.5)
    with caplog.at_level(logging.WARNING, logger='codebook_health_test'):
        hook.after_train_iter(runner, 0)
    scalars = runner.message_hub.log_scalars
    for i in range(2):
        for key in ('usage', 'perplexity', 'dead_codes'):
            assert f'train/codebook{i}_{key}' in scalars
        assert scalars[f'train/codebook{i}_usage'].current() < 0.5
    assert 'Codebook 0 usage' in caplog.text
    assert 'train/codebook_restarted' not in scalars


def test_skips_off_interval_iterations():
    model = TinyModel()
    train_steps(model)
    runner = fake_runner(model, iteration=3)
    runner.message_hub = MessageHub.get_instance('codebook_health_skip')
    CodebookHealthHook(interval=10).after_train_iter(runner, 0)
    assert not runner.message_hub.log_scalars


def test_restart_through_wrapper(monkeypatch):
    model = TinyModel()
    train_steps(model)
    dead = [sub.usage.dead_mask().sum().item() for sub in model.quantizer.subs]
    assert all(d > 0 for d in dead)
    monkeypatch.setattr(
        'fqzoo.engine.hooks.codebook_health.is_model_wrapper',
        lambda m: isinstance(m, FakeWrapper))
    runner = fake_runner(FakeWrapper(model), iteration=0)
    runner.message_hub = MessageHub.get_instance('codebook_health_restart')
    CodebookHealthHook(interval=1, restart=True).after_train_iter(runner, 0)
    assert runner.message_hub.get_scalar(
        'train/codebook_restarted').current() == sum(dead)
    assert all(s['dead_codes'] == 0 for s in model.quantizer.codebook_stats())
