"""Shared test helpers: a tiny synthetic image dataset and tiny configs.

``TinySyntheticImages`` is registered in fqzoo's DATASETS under a test-only
name. Subprocesses (``tools/train.py`` ...) import this module through the
config's ``custom_imports`` with ``tests/`` on ``PYTHONPATH``
(see :func:`tool_env`).
"""
import gzip
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import DefaultScope
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

from fqzoo.datasets.fashion_mnist import (
    IDX_IMAGES_MAGIC,
    IDX_LABELS_MAGIC,
    default_root,
)
from fqzoo.registry import DATASETS, HOOKS

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / 'tests'


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        'markers', 'slow: starts processes or trains for a while (< 60 s)')
    # `make test` runs the suite in TEST_JOBS pytest-xdist workers: one
    # torch thread each, so two workers do not fight over two cores (the
    # tools the tests start run with one thread already, tool_env)
    if os.environ.get('PYTEST_XDIST_WORKER'):
        torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config,
                                  items: List[pytest.Item]) -> None:
    """Files with a ``slow`` test first, each file's tests kept together
    and in order: `make test` hands whole files to its workers in this
    order (``--dist loadfile --no-loadscope-reorder``), so the long
    process-starting files start early and the short ones fill in at the
    end, instead of one worker finishing a long file alone."""
    slow_files = {item.path for item in items
                  if item.get_closest_marker('slow')}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.fixture(autouse=True)
def _seeded_rngs():
    """Every test starts from the same global random state, whatever ran
    before it in its worker (``--dist loadfile`` spreads files over workers
    differently from run to run): an unseeded ``torch.rand`` gives the same
    inputs each time, so a failure is reproducible."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


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
        rng = torch.Generator().manual_seed(self.seed * 100003 + index)
        coarse = torch.rand(1, 3, 4, 4, generator=rng) * 2 - 1
        image = F.interpolate(coarse, size=self.size, mode='bilinear',
                              align_corners=False)[0]
        return dict(inputs=image, data_samples=dict(label=index % 3,
                                                    index=index))


def write_idx(path: Path, array: np.ndarray, magic: int) -> Path:
    """Write ``array`` (uint8) as an IDX file, gzipped if ``path`` ends in
    ``.gz``."""
    header = magic.to_bytes(4, 'big') + b''.join(
        d.to_bytes(4, 'big') for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if path.suffix == '.gz':
        with gzip.open(path, 'wb') as file:
            file.write(data)
    else:
        path.write_bytes(data)
    return path


# Garment outlines on a 28x28 canvas, one per Fashion-MNIST class: polygons
# (and for a few classes a second stroke), jittered by a pixel per draw.
_OUTLINES = {
    0: [(3, 7), (9, 3), (19, 3), (25, 7), (22, 12), (20, 10), (20, 26),
        (8, 26), (8, 10), (6, 12)],                               # T-shirt
    1: [(8, 2), (20, 2), (21, 27), (16, 27), (14, 9), (12, 27), (7, 27)],
    2: [(6, 4), (22, 4), (27, 25), (23, 26), (20, 12), (20, 26), (8, 26),
        (8, 12), (5, 26), (1, 25)],                               # pullover
    3: [(10, 2), (18, 2), (17, 10), (23, 27), (5, 27), (11, 10)],  # dress
    4: [(6, 3), (22, 3), (27, 26), (23, 27), (21, 12), (21, 27), (7, 27),
        (7, 12), (5, 27), (1, 26)],                               # coat
    6: [(4, 5), (24, 5), (26, 20), (22, 21), (21, 10), (21, 27), (7, 27),
        (7, 10), (6, 21), (2, 20)],                               # shirt
    7: [(1, 22), (2, 16), (12, 14), (20, 11), (26, 13), (27, 22)],
    9: [(6, 3), (16, 3), (17, 15), (27, 19), (27, 26), (3, 26), (5, 14)],
}


def draw_garment(label: int, rng: np.random.Generator) -> np.ndarray:
    """A 28x28 uint8 drawing of a garment of Fashion-MNIST class ``label``
    (a light shape on black, as in the dataset). The shipped classifier
    names the class of about 70% of them: real enough to tell a broken
    metric, small enough to write in a test."""
    image = Image.new('L', (28, 28), 0)
    draw = ImageDraw.Draw(image)
    gray = int(rng.integers(120, 231))
    shift = rng.integers(-1, 2, size=2)
    if label == 5:                                   # sandal: straps
        for y in (14, 18, 22):
            draw.line([(2 + shift[0], y), (25, y + 2)], fill=gray, width=2)
    elif label == 8:                                 # bag with a handle
        draw.rectangle([3 + shift[0], 9 + shift[1], 25, 26], fill=gray)
        draw.arc([8, 1, 20, 15], 180, 360, fill=gray, width=2)
    else:
        points = [(x + shift[0] * (i % 2), y + shift[1] * (i % 3 == 0))
                  for i, (x, y) in enumerate(_OUTLINES[label])]
        draw.polygon(points, fill=gray)
        if label == 4:                               # the coat's opening
            draw.line([(14, 4), (14, 27)], fill=gray // 3, width=1)
        elif label == 6:                             # the shirt's collar
            draw.polygon([(11, 5), (14, 9), (17, 5)], fill=gray // 2)
        elif label == 7:                             # the sneaker's sole
            draw.line([(1, 22), (27, 22)], fill=255, width=2)
    return np.asarray(image)


def write_garment_idx(root: Path, counts: dict, seed: int = 0) -> Path:
    """A Fashion-MNIST folder of :func:`draw_garment` images in the four
    standard gzipped IDX files.

    Args:
        root (Path): the folder (created).
        counts (dict): images per split, e.g. ``dict(train=50, test=40)``;
            labels cycle through the ten classes.
        seed (int): the drawings' jitter. Defaults to 0.
    """
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, count in counts.items():
        prefix = dict(train='train', test='t10k')[split]
        labels = np.arange(count) % 10
        images = np.stack([draw_garment(int(c), rng) for c in labels])
        write_idx(root / f'{prefix}-images-idx3-ubyte.gz', images,
                  IDX_IMAGES_MAGIC)
        write_idx(root / f'{prefix}-labels-idx1-ubyte.gz', labels,
                  IDX_LABELS_MAGIC)
    return root


@pytest.fixture(scope='session')
def garment_root(tmp_path_factory) -> Path:
    """A small Fashion-MNIST stand-in written by the test session
    (:func:`write_garment_idx`: 60 train and 40 test drawings), so the
    loaders, metrics and classifier are tested without the dataset."""
    return write_garment_idx(tmp_path_factory.mktemp('garments'),
                             dict(train=60, test=40))


@pytest.fixture(scope='session')
def real_fmnist_root() -> str:
    """The real Fashion-MNIST folder (``$FQZOO_FASHION_MNIST``, else the
    Debian package's); skips the test where it is missing."""
    root = default_root()
    if not os.path.isdir(root):
        pytest.skip(f'real Fashion-MNIST not found at {root!r}: '
                    'apt-get install dataset-fashion-mnist, or set '
                    'FQZOO_FASHION_MNIST (docs/datasets.md)')
    return root


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
def scopes():
    """Restores mmengine's default scopes after a test that sets them."""
    saved = DefaultScope._instance_dict.copy()
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)


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
