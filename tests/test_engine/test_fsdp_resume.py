"""FSDP as safe as DDP, with two gloo processes on CPU: a run killed inside
a checkpoint save leaves the previous checkpoint whole, and resuming from
it ends bit-identical to the run that was never stopped (weights, AdamW
state, EMA); bf16 mixed precision (FSDP's ``MixedPrecision``) trains."""
import json
import os
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, run_tool, tool_env
from mmengine.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'test_tools'))
from test_train_generator import write_codes, write_config  # noqa: E402

FSDP_CONFIG = REPO / 'configs' / 'far' / 'far_l_fqgan_dual_fsdp.py'

# imported by the runs through custom_imports: rank 0 dies (as if killed)
# inside the save named by $FQZOO_TEST_DIE_AT, after the temporary file is
# written and before it is renamed; a hook records what the model computes
# in and the losses
PLUGIN = '''
import json
import os
from pathlib import Path

from mmengine.hooks import Hook
from torch import nn

from fqzoo.registry import HOOKS
from fqzoo.utils import checkpoint as ckpt_utils

_commit_file = ckpt_utils.commit_file


def commit_file(tmp, path):
    if Path(path).name == os.environ.get('FQZOO_TEST_DIE_AT'):
        os._exit(3)
    _commit_file(tmp, path)


ckpt_utils.commit_file = commit_file


@HOOKS.register_module(name='_TestPrecisionHook', force=True)
class PrecisionHook(Hook):
    def before_train(self, runner):
        self.dtypes, self.losses = set(), []
        for module in runner.model.modules():
            if isinstance(module, nn.Linear):
                module.register_forward_hook(
                    lambda m, args, out: self.dtypes.add(str(out.dtype)))

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses.append(float(outputs['loss']))

    def after_train(self, runner):
        Path(runner.work_dir, f'precision{runner.rank}.json').write_text(
            json.dumps(dict(dtypes=sorted(self.dtypes), losses=self.losses)))
'''


def _configs(tmp_path: Path, names, max_iters: int, extra: str = '',
             **model_wrapper) -> list:
    """FSDP versions of test_train_generator's tiny FAR config (dropout,
    label dropout, random views, AdamW with decay groups, an EMAHook),
    checkpoints every 2 iterations, importing :data:`PLUGIN`."""
    codes = write_codes(tmp_path / 'codes')
    strategy = Config.fromfile(str(FSDP_CONFIG)).strategy.to_dict()
    strategy['model_wrapper'].update(model_wrapper)
    (tmp_path / 'fsdp_test_plugin.py').write_text(PLUGIN)
    configs = []
    for name in names:
        write_config(tmp_path / f'{name}_base.py', tmp_path / name, codes,
                     max_iters=max_iters)
        config = tmp_path / f'{name}.py'
        config.write_text(
            f"_base_ = ['./{name}_base.py']\n"
            "runner_type = 'TokenizerFlexibleRunner'\n"
            f'strategy = {strategy!r}\n'
            "custom_imports = dict(imports=['fsdp_test_plugin'], "
            'allow_failed_imports=False)\n' + extra)
        configs.append(config)
    return configs


def _dist_train(config: Path, *args: str, check: bool = True, **env):
    port = 29500 + (os.getpid() * 7 + len(args) * 13
                    + len(str(config))) % 2000
    paths = os.pathsep.join([str(config.parent), tool_env()['PYTHONPATH']])
    proc = run_tool(['bash', 'tools/dist_train.sh', str(config), '2', *args],
                    timeout=150, check=check,
                    env=dict(env, PORT=str(port), PYTHONPATH=paths))
    return proc, proc.stdout + proc.stderr


def _load(path: Path) -> dict:
    return torch.load(path, map_location='cpu', weights_only=True)


def _assert_same_tensors(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), what
    for key, value in a.items():
        assert torch.equal(torch.as_tensor(value),
                           torch.as_tensor(b[key])), (what, key)


@pytest.mark.slow
def test_killed_in_save_then_resumed_is_bit_exact(tmp_path):
    straight, split = _configs(tmp_path, ['a', 'b'], max_iters=4)
    _dist_train(straight)
    proc, out = _dist_train(split, check=False, FQZOO_TEST_DIE_AT='iter_4.pth')
    assert proc.returncode != 0, out[-3000:]
    work = tmp_path / 'b'
    # the checkpoint being saved exists only under its temporary name; the
    # previous one and last_checkpoint are untouched
    assert (work / '.iter_4.pth.tmp').is_file()
    assert not (work / 'iter_4.pth').exists()
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_2.pth')

    _, out = _dist_train(split, '--resume')
    assert f'newest complete checkpoint {work / "iter_2.pth"}' in out
    assert 'resumed epoch: 0, iter: 2' in out
    a, b = _load(tmp_path / 'a' / 'iter_4.pth'), _load(work / 'iter_4.pth')
    _assert_same_tensors(a['state_dict'], b['state_dict'], 'state_dict')
    _assert_same_tensors(a['ema_state_dict'], b['ema_state_dict'], 'EMA')
    assert a['ema_state_dict']['steps'] == 4
    assert any(not torch.equal(v, a['ema_state_dict'][f'module.{k}'])
               for k, v in a['state_dict'].items())
    sa, sb = a['optimizer']['state'], b['optimizer']['state']
    assert sa.keys() == sb.keys() == a['state_dict'].keys()
    for name, state in sa.items():
        _assert_same_tensors(state, sb[name], name)
        assert int(state['step']) == 4
        # torch's CPU offload used to write exp_avg_sq over exp_avg
        assert not torch.equal(state['exp_avg'], state['exp_avg_sq']), name
    assert a['optimizer']['param_groups'] == b['optimizer']['param_groups']
    assert sorted({g['weight_decay'] for g in a['optimizer']['param_groups']
                   }) == [0.0, 0.05]
    assert a['meta']['iter'] == b['meta']['iter'] == 4


@pytest.mark.slow
def test_bf16_mixed_precision_trains_on_cpu(tmp_path):
    """FSDP's MixedPrecision with bf16 parameters runs on CPU over gloo
    (gradients reduced in fp32): the layers compute in bf16, the losses are
    finite, the kept weights stay fp32 and move."""
    config, = _configs(
        tmp_path, ['bf16'], max_iters=2,
        extra="custom_hooks = [dict(type='_TestPrecisionHook')]\n",
        mixed_precision=dict(param_dtype='bfloat16', reduce_dtype='float32',
                             buffer_dtype='float32'))
    _dist_train(config)
    work = tmp_path / 'bf16'
    for rank in (0, 1):
        seen = json.loads((work / f'precision{rank}.json').read_text())
        assert seen['dtypes'] == ['torch.bfloat16']
        assert len(seen['losses']) == 2
        assert all(0 < loss < 10 for loss in seen['losses'])
    weights = _load(work / 'iter_2.pth')['state_dict']
    assert {v.dtype for v in weights.values()} == {torch.float32}
    # the output layers start at zero
    outputs = [k for k in weights if k.startswith('head.outputs.')]
    assert len(outputs) == 2
    assert all(weights[k].abs().sum() > 0 for k in outputs)
