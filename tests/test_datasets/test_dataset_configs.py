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


def _resized(path, short: int) -> np.ndarray:
    """The JPEG decoded by PIL, shorter side resized to ``short`` (PIL
    bicubic, other side rounded), as ``[3, H, W]`` in [-1, 1]."""
    image = Image.open(path).convert('RGB')
    scale = short / min(image.size)
    size = tuple(max(short, round(s * scale)) for s in image.size)
    array = np.asarray(image.resize(size, Image.Resampling.BICUBIC))
    return array.transpose(2, 0, 1) / 127.5 - 1


def _window_of(image: np.ndarray, crop: np.ndarray) -> list:
    """Every (top, left, flipped) where ``crop`` is a window of ``image``
    (flipped: of its mirror image)."""
    size = crop.shape[-1]
    hits = []
    for flipped, source in ((False, image), (True, image[..., ::-1])):
        for top in range(source.shape[1] - size + 1):
            for left in range(source.shape[2] - size + 1):
                if abs(source[0, top, left] - crop[0, 0, 0]) < 1e-6 and \
                        np.allclose(source[:, top:top + size,
                                           left:left + size], crop,
                                    rtol=0, atol=1e-6):
                    hits.append((top, left, flipped))
    return hits


def test_imagenet_config(tmp_path):
    """Train items are 256 windows (some mirrored) of the JPEG resized to
    281 by PIL; val items are the centre 256 of the JPEG resized to 256:
    as LlamaGen's pipelines, written with PIL and NumPy."""
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
    batches = {}
    for key in ('train_dataloader', 'val_dataloader'):
        loader_cfg = cfg[key].copy()
        loader_cfg.update(batch_size=2, num_workers=0, persistent_workers=False)
        loader_cfg.dataset.data_root = str(tmp_path)
        batch = next(iter(build_loader(loader_cfg)))
        assert batch['inputs'].shape == (2, 3, 256, 256)
        assert sorted(batch['data_samples']['label'].tolist()) == [0, 1]
        batches[key] = batch
    val = batches['val_dataloader']
    for image, label in zip(val['inputs'], val['data_samples']['label']):
        # 400 * 256 / 260 = 393.8 -> 394 wide, centre from round(138 / 2)
        expected = _resized(tmp_path / 'val' / f'n0{label + 1}' / 'x.JPEG',
                            256)[:, :, 69:325]
        np.testing.assert_allclose(image.numpy(), expected, rtol=0,
                                   atol=1e-6)
    train = batches['train_dataloader']
    for image, label in zip(train['inputs'], train['data_samples']['label']):
        resized = _resized(tmp_path / 'train' / f'n0{label + 1}' / 'x.JPEG',
                           281)
        assert resized.shape == (3, 291, 281)
        assert len(_window_of(resized, image.numpy())) == 1


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
