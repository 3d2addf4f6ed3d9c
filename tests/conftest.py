"""Shared test helpers: a tiny synthetic image dataset and tiny configs.

``TinySyntheticImages`` is registered in fqzoo's DATASETS under a test-only
name. Subprocesses (``tools/train.py`` ...) import this module through the
config's ``custom_imports`` with ``tests/`` on ``PYTHONPATH``
(see :func:`tool_env`).
"""
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import pytest
import torch
import torch.nn.functional as F
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch.utils.data import Dataset

from fqzoo.registry import DATASETS, HOOKS

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / 'tests'


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        'markers', 'slow: starts processes or trains for a while (< 60 s)')


@DATASETS.register_module(name='_TestSyntheticImages', force=True)
class TinySyntheticImages(Dataset):
    """Smooth random RGB images in [-1, 1], the same for the same index.

    Args:
        num_samples (int): dataset length. Defaults to 16.
        size (int): image side. Defaults to 16.
        seed (int): base seed. Defaults to 0.
    """

    def __init__(self, num_samples: int = 16, size: int = 16,
                 seed: int = 0) -> None:
        self.num_samples = num_samples
        self.size = size
        self.seed = seed

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> dict:
        gen = torch.Generator().manual_seed(self.seed * 100003 + index)
        coarse = torch.rand(1, 3, 4, 4, generator=gen) * 2 - 1
        image = F.interpolate(coarse, size=self.size, mode='bilinear',
                              align_corners=False)[0]
        return dict(inputs=image, data_samples=dict(label=index % 3,
                                                    index=index))


def tiny_config_text(work_dir: Path, *, max_iters: int = 4,
                     disc_start: int = 1, checkpoint_interval: int = 2,
                     val_interval: int = 1000, extra: str = '') -> str:
    """A complete tiny GAN tokenizer config (16x16 images, ch=8, codebook
    32, discriminator on from ``disc_start``) as config-file text."""
    return f'''
_base_ = ['{REPO}/configs/_base_/default_runtime.py']
custom_imports = dict(imports=['conftest'], allow_failed_imports=False)
work_dir = '{work_dir}'
model = dict(
    type='ImageTokenizer',
    encoder=dict(type='VQGANEncoder', ch=8, ch_mult=(1, 2),
                 num_res_blocks=1, z_channels=8),
    decoder=dict(type='VQGANDecoder', ch=8, ch_mult=(1, 2),
                 num_res_blocks=1, z_channels=8),
    quantizer=dict(type='VectorQuantizer', codebook_size=32, embed_dim=4),
    discriminator=dict(type='PatchGANDiscriminator', ndf=8, num_layers=2),
    disc_start={disc_start})
_loader = dict(batch_size=4, num_workers=0,
               sampler=dict(type='DefaultSampler', shuffle=True),
               collate_fn=dict(type='default_collate'),
               dataset=dict(type='_TestSyntheticImages', num_samples=16))
_eval_loader = dict(_loader, sampler=dict(type='DefaultSampler', shuffle=False),
                    dataset=dict(type='_TestSyntheticImages', num_samples=8,
                                 seed=1))
train_dataloader = _loader
val_dataloader = _eval_loader
test_dataloader = _eval_loader
val_evaluator = [dict(type='PSNR'), dict(type='CodebookUsage')]
test_evaluator = val_evaluator
train_cfg = dict(type='IterBasedTrainLoop', max_iters={max_iters},
                 val_interval={val_interval})
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    constructor='TokenizerOptimWrapperConstructor',
    autoencoder=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3)),
    discriminator=dict(type='OptimWrapper',
                       optimizer=dict(type='Adam', lr=1e-3)))
param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False,
                        begin=0, end={max_iters})]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', interval={checkpoint_interval},
                    by_epoch=False, max_keep_ckpts=10, save_last=True))
vis_backends = [dict(type='LocalVisBackend')]
# unnamed: each runner gets its own Visualizer instance (save_dir)
visualizer = dict(_delete_=True, type='Visualizer', vis_backends=vis_backends)
randomness = dict(seed=0, deterministic=True)
{extra}
'''


def write_tiny_config(path: Path, work_dir: Path, **kwargs) -> Path:
    """Write :func:`tiny_config_text` to ``path`` and return it."""
    path.write_text(tiny_config_text(work_dir, **kwargs))
    return path


def tool_env() -> dict:
    """Environment for tool subprocesses: this Python first on ``PATH``,
    ``tests/`` importable, one thread, CPU only."""
    env = dict(os.environ)
    env['PATH'] = os.pathsep.join([str(Path(sys.executable).parent),
                                   env.get('PATH', '')])
    env['PYTHONPATH'] = os.pathsep.join(
        [str(TESTS), str(REPO)] + [p for p in [env.get('PYTHONPATH')] if p])
    env['OMP_NUM_THREADS'] = '1'
    env['CUDA_VISIBLE_DEVICES'] = ''
    return env


def run_tool(args: List[str], timeout: float = 120, check: bool = True,
             env: Optional[dict] = None) -> subprocess.CompletedProcess:
    """Run ``args`` (``tools/x.py ...`` or ``bash tools/x.sh ...``) from the
    repository root with :func:`tool_env` (plus ``env``) and return the
    finished process."""
    if args[0].endswith('.py'):
        args = [sys.executable] + args
    proc = subprocess.run(args, cwd=REPO, env={**tool_env(), **(env or {})},
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} failed ({proc.returncode}):\n'
                             f'{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    return proc


@HOOKS.register_module(name='_TestDumpWeightsHook', force=True)
class DumpWeightsHook(Hook):
    """Saves each rank's final parameters and state dict keys to
    ``work_dir/rank{r}.pth``."""

    def after_run(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        params = {k: v.detach().cpu() for k, v in model.named_parameters()}
        torch.save(dict(params=params, keys=list(model.state_dict())),
                   Path(runner.work_dir) / f'rank{runner.rank}.pth')


class MarkerPayload:
    """Unpickling this runs ``open(path, 'w')``: a file that appears means
    the checkpoint's code ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, 'w'))


@pytest.fixture
def unsafe_checkpoint(tmp_path: Path):
    """``(checkpoint_path, marker_path)``: a checkpoint-shaped file whose
    unpickling would create the marker."""
    marker = tmp_path / 'pwned'
    ckpt = tmp_path / 'unsafe.pth'
    torch.save({'meta': dict(iter=1, epoch=0), 'state_dict': {},
                'payload': MarkerPayload(marker)}, ckpt)
    assert not marker.exists()
    return ckpt, marker


@pytest.fixture(scope='session')
def trained_run(tmp_path_factory) -> dict:
    """One tiny training run through ``tools/train.py`` (4 iterations,
    checkpoints at 2 and 4), shared by the tests that need a checkpoint.

    Returns:
        dict: ``config``, ``work_dir`` and ``checkpoint`` (the final one).
    """
    root = tmp_path_factory.mktemp('trained')
    work_dir = root / 'work_dir'
    config = write_tiny_config(root / 'tiny_gan.py', work_dir)
    run_tool(['tools/train.py', str(config)])
    return dict(config=config, work_dir=work_dir,
                checkpoint=work_dir / 'iter_4.pth')
