"""TokenizerRunner, SafeCheckpointHook, the checkpoint loader patch, the
config formatting cache, the environment table and ReconstructionGridHook,
in process."""
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, tool_env, write_tiny_config
from mmengine.config import Config
from mmengine.config import config as mmengine_config
from mmengine.runner import CheckpointLoader, load_checkpoint
from mmengine.utils.dl_utils import collect_env
from PIL import Image
from torch import nn

from fqzoo.engine import TokenizerRunner, compat
from fqzoo.engine.compat import format_code_once, load_from_local_safely
from fqzoo.engine.hooks import ReconstructionGridHook, SafeCheckpointHook
from fqzoo.engine.runner import build_runner
from fqzoo.utils.checkpoint import UnsafeCheckpointError


@pytest.fixture(autouse=True)
def restore_torch_determinism():
    """The tiny config's ``randomness.deterministic=True`` switches torch to
    deterministic algorithms globally; give other tests the old setting."""
    enabled = torch.are_deterministic_algorithms_enabled()
    benchmark = torch.backends.cudnn.benchmark
    yield
    torch.use_deterministic_algorithms(enabled)
    torch.backends.cudnn.benchmark = benchmark
    torch.backends.cudnn.deterministic = enabled


def tiny_runner(tmp_path, **kwargs) -> TokenizerRunner:
    """A runner for the tiny config; the config file is named after the test
    so that runners started in the same second get different experiment
    names (and so their own Visualizer instances)."""
    tmp_path.mkdir(exist_ok=True)
    config = tmp_path / f'{tmp_path.parent.name}_{tmp_path.name}.py'
    cfg = Config.fromfile(write_tiny_config(config, tmp_path / 'work',
                                            **kwargs))
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    return build_runner(cfg)


def test_local_checkpoints_load_through_safe_load(unsafe_checkpoint):
    assert CheckpointLoader._get_checkpoint_loader('/x/y.pth') is \
        load_from_local_safely
    ckpt, marker = unsafe_checkpoint
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint(nn.Linear(1, 1), str(ckpt))
    assert not marker.exists()


def test_runner_always_has_safe_checkpoint_hook(tmp_path):
    runner = tiny_runner(
        tmp_path, extra="custom_hooks = [dict(type='EmptyCacheHook')]")
    assert isinstance(runner, TokenizerRunner)
    assert sum(isinstance(h, SafeCheckpointHook) for h in runner.hooks) == 1


def test_runner_checkpoints_resume_in_process(tmp_path):
    runner = tiny_runner(tmp_path, max_iters=2, checkpoint_interval=2)
    runner.train()
    ckpt = tmp_path / 'work' / 'iter_2.pth'
    state = torch.load(ckpt, weights_only=True)
    loss = state['message_hub']['log_scalars']['train/loss']
    assert set(loss) == {'log_history', 'count_history', 'max_length'}
    assert isinstance(state['message_hub']['runtime_info']['eta'], float)

    resumed = tiny_runner(tmp_path / 'again', max_iters=2,
                          extra=f"resume = True\nload_from = '{ckpt}'")
    resumed.load_or_resume()
    assert resumed.iter == 2
    assert resumed.message_hub.get_scalar('train/loss').current() == \
        pytest.approx(loss['log_history'][-1])


def test_runner_resume_refuses_unsafe_checkpoint(tmp_path, unsafe_checkpoint):
    ckpt, marker = unsafe_checkpoint
    runner = tiny_runner(tmp_path, extra=f"resume = True\nload_from = '{ckpt}'")
    with pytest.raises(UnsafeCheckpointError):
        runner.train()
    assert not marker.exists()


def test_reconstruction_grid_hook_writes_png(tmp_path):
    runner = tiny_runner(
        tmp_path, max_iters=2, val_interval=2,
        extra="custom_hooks = [dict(type='ReconstructionGridHook', "
              "interval=1, num_samples=6, pairs_per_row=4)]")
    runner.train()
    vis = tmp_path / 'work' / 'vis'
    assert sorted(p.name for p in vis.glob('*.png')) == [
        'iter_1.png', 'iter_2.png', 'val_iter_2.png']
    # 6 pairs of 16x16, 4 pairs per row -> 2 rows x 8 images, padding 2
    assert Image.open(vis / 'iter_1.png').size == (8 * 18 + 2, 2 * 18 + 2)
    hook = next(h for h in runner.hooks
                if isinstance(h, ReconstructionGridHook))
    assert hook._images.shape == (6, 3, 16, 16)
    assert Path(runner.log_dir, 'vis_data', 'vis_image',
                'reconstructions_2.png').is_file()


def test_config_text_is_formatted_once_with_yapfs_result(monkeypatch):
    """Config.pretty_text through the cache: yapf runs once per distinct
    text, and the text is what yapf itself gives (checked with MMEngine's
    own call restored), a changed config formatted anew."""
    yapf = format_code_once.yapf_format_code
    calls = []

    def counting(text, **kwargs):
        calls.append(text)
        return yapf(text, **kwargs)

    assert mmengine_config.FormatCode is format_code_once
    monkeypatch.setattr(compat, '_YAPF_FORMAT_CODE', counting)
    compat._format_code.cache_clear()
    cfg = Config(dict(model=dict(type='VQ', sizes=[8, 16]), lr=1e-4))
    texts = [cfg.pretty_text for _ in range(3)]
    assert len(calls) == 1 and texts == [texts[0]] * 3
    cfg.lr = 3e-4
    changed = cfg.pretty_text
    assert len(calls) == 2 and 'lr = 0.0003' in changed
    assert 'lr = 0.0001' in texts[0]
    with monkeypatch.context() as patch:
        patch.setattr(mmengine_config, 'FormatCode', yapf)
        assert cfg.pretty_text == changed
        cfg.lr = 1e-4
        assert cfg.pretty_text == texts[0]
    # yapf did format it (the raw text has 'lr=0.0001')
    raw = Config(cfg.to_dict(), format_python_code=False).pretty_text
    assert 'lr=0.0001' in raw and raw != texts[0]


ENVIRONMENT = """
import json, sys
import mmengine.runner.runner as runner
import fqzoo.engine
env = runner.collect_env()
loaded = [m for m in sys.modules if m.split('.')[0] == 'torchvision']
print(json.dumps(dict(env=[(k, str(v)) for k, v in env.items()],
                      torchvision=loaded)))
"""


def test_runner_environment_table_without_importing_torchvision():
    """The table a Runner logs, in a fresh process: MMEngine's entries, the
    torchvision version of its installed distribution, and torchvision
    (which imports torch._dynamo) left unimported."""
    proc = subprocess.run([sys.executable, '-c', ENVIRONMENT], cwd=REPO,
                          env=tool_env(), capture_output=True, text=True,
                          timeout=120, check=True)
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out['torchvision'] == []
    env = dict(out['env'])
    assert env['TorchVision'] == importlib.metadata.version('torchvision')
    import torchvision
    assert torchvision.__version__.startswith(env['TorchVision'])
    reference = collect_env()               # torchvision imported here
    assert list(env) == list(reference)
    same = set(env) - {'TorchVision', 'numpy_random_seed'}  # per process
    assert {k: env[k] for k in same} == {k: str(reference[k]) for k in same}

