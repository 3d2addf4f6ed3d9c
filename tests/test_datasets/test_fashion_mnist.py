from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_idx

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


def test_reads_gzipped_and_plain_idx(idx_root):
    train = DATASETS.build(dict(type='FashionMNIST', data_root=str(idx_root)))
    test = FashionMNIST(data_root=str(idx_root), split='test', image_size=28)
    assert len(train) == 5 and len(test) == 3
    raw = read_idx(str(idx_root / 't10k-images-idx3-ubyte'), IDX_IMAGES_MAGIC)
    sample = test[2]
    image = sample['inputs']
    assert image.shape == (3, 28, 28)
    assert torch.equal(image[0], image[2])
    expected = torch.from_numpy(raw[2] / 127.5 - 1).float()
    assert torch.allclose(image[0], expected, atol=1e-6)
    assert sample['data_samples'] == dict(label=2, index=2)
    resized = train[4]['inputs']
    assert resized.shape == (3, 32, 32)
    assert -1 <= resized.min() and resized.max() <= 1


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
