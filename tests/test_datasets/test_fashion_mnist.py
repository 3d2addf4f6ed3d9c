import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import write_idx
from PIL import Image

from fqzoo.datasets import FashionMNIST
from fqzoo.datasets.fashion_mnist import (
    DEBIAN_ROOT,
    IDX_IMAGES_MAGIC,
    IDX_LABELS_MAGIC,
    ROOT_ENV,
    default_root,
    read_idx,
)
from fqzoo.registry import DATASETS


@pytest.fixture
def idx_root(tmp_path: Path) -> Path:
    """A train split of 5 images (gzipped) and a test split of 3 (plain)."""
    rng = np.random.default_rng(0)
    for prefix, n, suffix in (('train', 5, '.gz'), ('t10k', 3, '')):
        write_idx(tmp_path / f'{prefix}-images-idx3-ubyte{suffix}',
                  rng.integers(0, 256, (n, 28, 28)), IDX_IMAGES_MAGIC)
        write_idx(tmp_path / f'{prefix}-labels-idx1-ubyte{suffix}',
                  np.arange(n) % 10, IDX_LABELS_MAGIC)
    return tmp_path


def parse_idx(path: Path) -> np.ndarray:
    """An IDX file read by the format's definition (big-endian magic
    ``0x0000 08 ndim``, ``ndim`` big-endian uint32 sizes, then uint8
    data), independently of fqzoo's reader."""
    raw = (gzip.open if path.suffix == '.gz' else open)(path, 'rb').read()
    zero, dtype, ndim = struct.unpack('>HBB', raw[:4])
    assert (zero, dtype) == (0, 0x08)
    shape = struct.unpack(f'>{ndim}I', raw[4:4 + 4 * ndim])
    return np.frombuffer(raw[4 + 4 * ndim:], np.uint8).reshape(shape)


def by_hand(image: np.ndarray, size: int) -> np.ndarray:
    """A 28x28 uint8 image as the dataset should give it: ``x / 127.5 - 1``,
    resized to ``size`` with PIL's float bilinear filter (antialiased when
    shrinking), replicated to three channels."""
    scaled = image.astype(np.float32) / 127.5 - 1
    if size != 28:
        scaled = np.asarray(Image.fromarray(scaled, mode='F').resize(
            (size, size), Image.Resampling.BILINEAR))
    return np.repeat(scaled[None], 3, 0)


@pytest.mark.parametrize('size', [28, 32, 20])
def test_items_equal_the_idx_files_read_by_hand(idx_root, size):
    """Every item of the gzipped train and the plain test split equals its
    image and label parsed from the files, resized by PIL."""
    for split, prefix, suffix, count in (('train', 'train', '.gz', 5),
                                         ('test', 't10k', '', 3)):
        dataset = DATASETS.build(dict(type='FashionMNIST', split=split,
                                      data_root=str(idx_root),
                                      image_size=size))
        images = parse_idx(idx_root / f'{prefix}-images-idx3-ubyte{suffix}')
        labels = parse_idx(idx_root / f'{prefix}-labels-idx1-ubyte{suffix}')
        assert len(dataset) == count == len(images)
        for i in range(count):
            sample = dataset[i]
            np.testing.assert_allclose(sample['inputs'].numpy(),
                                       by_hand(images[i], size), rtol=0,
                                       atol=2e-6, err_msg=f'{split} {i}')
            assert sample['data_samples'] == dict(label=int(labels[i]),
                                                  index=i)
    raw = read_idx(str(idx_root / 't10k-images-idx3-ubyte'), IDX_IMAGES_MAGIC)
    np.testing.assert_array_equal(raw, parse_idx(
        idx_root / 't10k-images-idx3-ubyte'))


def test_bad_magic_names_the_file(idx_root):
    bad = idx_root / 't10k-labels-idx1-ubyte'
    write_idx(bad, np.zeros(3), IDX_IMAGES_MAGIC)
    with pytest.raises(ValueError, match='t10k-labels-idx1-ubyte'):
        FashionMNIST(data_root=str(idx_root), split='test')


def test_truncated_data_names_the_file(idx_root):
    path = idx_root / 't10k-images-idx3-ubyte'
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match='t10k-images-idx3-ubyte'):
        FashionMNIST(data_root=str(idx_root), split='test')


def test_missing_files_and_root(tmp_path):
    with pytest.raises(FileNotFoundError, match='apt-get install'):
        FashionMNIST(data_root=str(tmp_path / 'nowhere'))
    with pytest.raises(FileNotFoundError, match='train-images-idx3-ubyte'):
        FashionMNIST(data_root=str(tmp_path))
    with pytest.raises(ValueError, match='split'):
        FashionMNIST(data_root=str(tmp_path), split='val')


def test_default_root_is_the_environment_variable(garment_root,
                                                 monkeypatch, tmp_path):
    monkeypatch.setenv(ROOT_ENV, str(garment_root))
    assert default_root() == str(garment_root)
    test = FashionMNIST(split='test')
    assert len(test) == 40 and test.labels[:3].tolist() == [0, 1, 2]
    monkeypatch.delenv(ROOT_ENV)
    assert default_root() == DEBIAN_ROOT
    monkeypatch.setenv(ROOT_ENV, str(tmp_path / 'nowhere'))
    with pytest.raises(FileNotFoundError, match=f'nowhere.*{ROOT_ENV}'):
        FashionMNIST()


def test_real_dataset(real_fmnist_root):
    test = FashionMNIST(data_root=real_fmnist_root, split='test')
    assert len(test) == 10000
    assert set(test.labels.tolist()) == set(range(10))
    sample = test[0]
    assert sample['inputs'].shape == (3, 32, 32)
    assert sample['data_samples'] == dict(label=9, index=0)
    assert test.metainfo['classes'][9] == 'Ankle boot'
    root = Path(real_fmnist_root)
    images = parse_idx(next(root.glob('t10k-images-idx3-ubyte*')))
    labels = parse_idx(next(root.glob('t10k-labels-idx1-ubyte*')))
    assert np.bincount(labels).tolist() == [1000] * 10
    native = FashionMNIST(data_root=real_fmnist_root, split='test',
                          image_size=28)
    for i in (0, 1, 4321, 9999):
        np.testing.assert_allclose(native[i]['inputs'].numpy(),
                                   by_hand(images[i], 28), rtol=0, atol=1e-6)
        np.testing.assert_allclose(test[i]['inputs'].numpy(),
                                   by_hand(images[i], 32), rtol=0, atol=2e-6)
        assert test[i]['data_samples']['label'] == labels[i]
