"""Every leaf config loads, is complete enough for the Runner, and the
CPU-scale ones build and run a forward pass."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from fqzoo.registry import MODELS

ROOT = Path(__file__).resolve().parents[1]
LEAVES = sorted(p for p in (ROOT / 'configs').rglob('*.py')
                if '_base_' not in p.parts)
CPU_SCALE = [p for p in LEAVES if p.parent.name in ('quickstart', 'ablation')
             or p.name.endswith('_tiny_photos.py')]


@pytest.mark.parametrize('path', LEAVES, ids=lambda p: str(p.relative_to(ROOT)))
def test_leaf_config_is_complete(path):
    cfg = Config.fromfile(str(path))
    assert cfg.default_scope == 'fqzoo'
    assert cfg.model.type == 'ImageTokenizer'
    for loop in ('train', 'val', 'test'):
        assert cfg.get(f'{loop}_dataloader') is not None, loop
        assert cfg.get(f'{loop}_cfg') is not None, loop
    assert cfg.val_evaluator and cfg.test_evaluator
    assert cfg.optim_wrapper.constructor == 'TokenizerOptimWrapperConstructor'
    assert cfg.train_cfg.max_iters > 0


@pytest.mark.parametrize('path', CPU_SCALE, ids=lambda p: p.stem)
def test_cpu_scale_config_builds_and_reconstructs(path):
    cfg = Config.fromfile(str(path))
    init_default_scope('fqzoo')
    model = MODELS.build(cfg.model)
    size = cfg.train_dataloader.dataset.crop_size
    x = torch.rand(2, 3, size, size) * 2 - 1
    losses = model(x, mode='loss')
    assert all(k.startswith('loss_') for k in losses)
    assert all(torch.isfinite(v) for v in losses.values())
    idx = model.eval().encode(x)
    assert model.decode(idx).shape == x.shape
