"""The base dataset configs build through the Runner's data loader path."""
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from PIL import Image

CONFIGS = Path(__file__).resolve().parents[2] / 'configs' / '_base_' / 'datasets'


def build_loader(cfg: dict):
    with DefaultScope.overwrite_default_scope('fqzoo'):
        return Runner.build_dataloader(cfg, seed=0)


def test_photo_patches_config():
    cfg = Config.fromfile(str(CONFIGS / 'photo_patches.py'))
    assert cfg.train_dataloader.num_workers == 0
    for key, size in (('train_dataloader', 16), ('val_dataloader', 8),
                      ('test_dataloader', 8)):
        batch = next(iter(build_loader(cfg[key])))
        assert set(batch) == {'inputs', 'data_samples'}
        assert batch['inputs'].shape == (size, 3, 32, 32)
        assert set(batch['data_samples']) == {'label', 'index'}
        assert batch['data_samples']['label'].dtype == torch.long
    val = [next(iter(build_loader(cfg.val_dataloader))) for _ in range(2)]
    assert torch.equal(val[0]['inputs'], val[1]['inputs'])
    assert val[0]['data_samples']['index'].tolist() == list(range(8))


def test_imagenet_config(tmp_path):
    rng = np.random.default_rng(0)
    for split, size in (('train', (300, 290)), ('val', (260, 400))):
        for name in ('n01', 'n02'):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            pixels = rng.integers(0, 256, size + (3, ), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / 'x.JPEG')
    cfg = Config.fromfile(str(CONFIGS / 'imagenet.py'))
    assert cfg.train_dataloader.batch_size == 32
    assert cfg.train_dataloader.persistent_workers
    for key in ('train_dataloader', 'val_dataloader'):
        loader_cfg = cfg[key].copy()
        loader_cfg.update(batch_size=2, num_workers=0, persistent_workers=False)
        loader_cfg.dataset.data_root = str(tmp_path)
        batch = next(iter(build_loader(loader_cfg)))
        assert batch['inputs'].shape == (2, 3, 256, 256)
        assert sorted(batch['data_samples']['label'].tolist()) == [0, 1]


def test_fashion_mnist_config_reads_the_folder_the_environment_names(
        garment_root, monkeypatch):
    monkeypatch.setenv('FQZOO_FASHION_MNIST', str(garment_root))
    cfg = Config.fromfile(str(CONFIGS / 'fashion_mnist.py'))
    assert cfg.val_dataloader.dataset.data_root == str(garment_root)
    batch = next(iter(build_loader(cfg.val_dataloader)))
    assert batch['inputs'].shape == (16, 3, 32, 32)
    assert batch['data_samples']['label'].tolist() == [i % 10
                                                       for i in range(16)]
    monkeypatch.delenv('FQZOO_FASHION_MNIST')
    default = Config.fromfile(str(CONFIGS / 'fashion_mnist.py'))
    assert default.data_root == '/usr/share/datasets/fashion-mnist'
