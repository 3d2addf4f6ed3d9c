"""FSDP through TokenizerFlexibleRunner: the FAR-L FSDP config's wrap policy
picks every transformer block, and two gloo processes on CPU train a tiny
FAR to the same weights and the same EMA as DDP (weight-decay groups and
gradient clipping over the whole gradient included). Resume, atomic saves
and bf16 mixed precision: test_fsdp_resume.py."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, run_tool
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import FlexibleRunner
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'test_tools'))
from test_train_generator import write_codes, write_config  # noqa: E402

from fqzoo.engine.fsdp import (  # noqa: E402
    TokenizerFSDPStrategy,
    module_type_wrap_policy,
)
from fqzoo.models.generators.layers import TransformerBlock  # noqa: E402
from fqzoo.registry import FUNCTIONS, GENERATORS, RUNNERS, STRATEGIES  # noqa: E402

FSDP_CONFIG = REPO / 'configs' / 'far' / 'far_l_fqgan_dual_fsdp.py'
BLOCK = 'fqzoo.models.generators.layers.TransformerBlock'


def _policy(cfg: Config):
    policy = dict(cfg.strategy.model_wrapper.auto_wrap_policy)
    func = FUNCTIONS.get(policy.pop('type'))
    return lambda module: func(module, recurse=False, nonwrapped_numel=0,
                               **policy)


def test_far_l_fsdp_config_wraps_each_transformer_block():
    cfg = Config.fromfile(str(FSDP_CONFIG))
    assert issubclass(RUNNERS.get(cfg.runner_type), FlexibleRunner)
    assert STRATEGIES.get(cfg.strategy.type) is TokenizerFSDPStrategy
    assert cfg.strategy.state_dict_cfg == 'full'
    init_default_scope('fqzoo')
    with torch.device('meta'):
        model = GENERATORS.build(cfg.model)
    policy = _policy(cfg)
    wrapped = [name for name, m in model.named_modules() if policy(m)]
    # FAR-L: 36 trunk blocks and 4 head blocks, nothing else
    assert len(wrapped) == 36 + 4
    assert sum(n.startswith('backbone.') for n in wrapped) == 36
    assert sum(n.startswith('head.') for n in wrapped) == 4
    assert all(isinstance(model.get_submodule(n), TransformerBlock)
               for n in wrapped)
    # the policy always lets FSDP look into children
    assert module_type_wrap_policy(model, True, 0, module_types=[BLOCK])


def test_wrap_policy_names_classes_by_dotted_path():
    block = TransformerBlock(8, 2, 16)
    assert module_type_wrap_policy(block, False, 0, module_types=[BLOCK])
    assert not module_type_wrap_policy(nn.Linear(2, 2), False, 0,
                                       module_types=[BLOCK])
    assert module_type_wrap_policy(nn.Linear(2, 2), False, 0, module_types=[
        BLOCK, 'torch.nn.Linear'])
    with pytest.raises(ValueError, match='dotted path'):
        module_type_wrap_policy(block, False, 0,
                                module_types=['TransformerBlock'])


def test_strategy_writes_full_state_dicts_only():
    assert TokenizerFSDPStrategy().state_dict_type.name == 'FULL_STATE_DICT'
    with pytest.raises(ValueError, match="full state dicts only .*got "
                       "'local': LOCAL_STATE_DICT checkpoints hold "
                       "ShardedTensor objects"):
        TokenizerFSDPStrategy(state_dict_cfg='local')


def test_strategy_without_flexible_runner_is_refused(tmp_path):
    config = tmp_path / 'c.py'
    config.write_text(f"_base_ = ['{REPO}/configs/far/far_tiny_fmnist.py']\n"
                      "strategy = dict(type='TokenizerFSDPStrategy')\n")
    proc = run_tool(['tools/train.py', str(config)], check=False, timeout=60)
    assert proc.returncode != 0
    assert "set runner_type = 'TokenizerFlexibleRunner'" in proc.stderr


# deterministic training from the same weights: no dropout; SGD so that a
# decay or clipping difference shows in the weights; clipping always active;
# an EMA (ShardedEMAHook under FSDP) that moves far from the weights
_DETERMINISTIC = '''
load_from = '{init}'
model = dict(class_dropout=0.0,
             backbone=dict(token_dropout=0.0, resid_dropout=0.0,
                           ffn_dropout=0.0),
             head=dict(resid_dropout=0.0, ffn_dropout=0.0))
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.5, weight_decay=0.5),
                     paramwise_cfg=dict(flat_decay_mult=0.0),
                     clip_grad=dict(max_norm=0.05))
custom_hooks = [dict(type='EMAHook', momentum=0.5)]
default_hooks = dict(checkpoint=dict(interval=1))
'''


def _same_views(codes: Path) -> Path:
    """The codes of :func:`write_codes` with every view equal to the first,
    so the random view drawn in training does not matter."""
    shard = codes / 'codes_00000.npy'
    data = np.load(shard)
    np.save(shard, np.repeat(data[:, :1], data.shape[1], axis=1))
    return codes


def _write(tmp_path: Path, name: str, codes: Path, extra: str) -> Path:
    write_config(tmp_path / f'{name}_base.py', tmp_path / name, codes,
                 max_iters=2)
    config = tmp_path / f'{name}.py'
    config.write_text(f"_base_ = ['./{name}_base.py']\n" + _DETERMINISTIC.replace(
        '{init}', str(tmp_path / 'init.pth')) + extra)
    return config


def _train(config: Path) -> list:
    """2 iterations with tools/dist_train.sh on 2 processes; the two
    checkpoints."""
    port = 29500 + (os.getpid() + len(config.stem)) % 2000
    proc = run_tool(['bash', 'tools/dist_train.sh', str(config), '2'],
                    timeout=150, env={'PORT': str(port)})
    assert 'Distributed training: True' in proc.stdout + proc.stderr
    work_dir = Path(Config.fromfile(str(config)).work_dir)
    return [torch.load(work_dir / f'iter_{i}.pth', map_location='cpu',
                       weights_only=True) for i in (1, 2)]


def _trained(checkpoint: dict) -> dict:
    """The trained weights of a checkpoint EMAHook wrote (the average is
    under ``state_dict``, what a deployment loads)."""
    return {k[len('module.'):]: v for k, v in
            checkpoint['ema_state_dict'].items() if k.startswith('module.')}


@pytest.mark.slow
def test_fsdp_on_cpu_trains_like_ddp(tmp_path):
    codes = _same_views(write_codes(tmp_path / 'codes'))
    strategy = Config.fromfile(str(FSDP_CONFIG)).strategy.to_dict()
    ddp_config = _write(tmp_path, 'ddp', codes, '')
    fsdp_config = _write(tmp_path, 'fsdp', codes,
                         "runner_type = 'TokenizerFlexibleRunner'\n"
                         f'strategy = {strategy!r}\n')
    init_default_scope('fqzoo')
    init = GENERATORS.build(Config.fromfile(str(ddp_config)).model)
    init = {k: v.detach().clone() for k, v in init.state_dict().items()}
    torch.save(dict(state_dict=init, meta=dict()), tmp_path / 'init.pth')
    (ddp_1, ddp_2), (fsdp_1, fsdp_2) = _train(ddp_config), _train(fsdp_config)
    ddp, fsdp = _trained(ddp_2), _trained(fsdp_2)
    assert fsdp.keys() == ddp.keys() == init.keys()
    for key, value in ddp.items():
        assert not torch.equal(value, init[key]), f'{key} did not train'
        torch.testing.assert_close(fsdp[key], value, rtol=1e-4, atol=1e-6,
                                   msg=key)
    # the EMA copies the weights after step 1 (w1), then moves halfway to
    # w2: FSDP's average of shards is the whole model's
    w1 = _trained(ddp_1)
    assert ddp_2['ema_state_dict']['steps'] == fsdp_2['ema_state_dict'][
        'steps'] == 2
    for key, value in ddp_2['state_dict'].items():
        expected = torch.lerp(w1[key], ddp[key], 0.5)
        assert not torch.equal(expected, ddp[key]), key
        torch.testing.assert_close(value, expected, rtol=0, atol=0, msg=key)
        torch.testing.assert_close(fsdp_2['state_dict'][key], expected,
                                   rtol=1e-4, atol=1e-6, msg=key)
    for key, value in fsdp_1['state_dict'].items():
        assert torch.equal(value, _trained(fsdp_1)[key]), key
