from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate
from PIL import Image
from torch.utils.data import DataLoader

from fqzoo.datasets import BadImageError, ImageFolderDataset
from fqzoo.registry import DATASETS


def write_image(path: Path, value: int, size=(6, 9), mode='RGB') -> Path:
    """A ``size`` (height, width) image whose rows, columns and channels
    all differ, offset by ``value`` (so each file differs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    y, x, c = np.mgrid[:size[0], :size[1], :3]
    array = ((value + 13 * x + 29 * y + 80 * c) % 256).astype(np.uint8)
    Image.fromarray(array if mode == 'RGB' else array[..., 0]).save(path)
    return path


def expected(path: Path) -> torch.Tensor:
    """The file read with PIL, as RGB ``[3, H, W]`` in [-1, 1]."""
    rgb = np.asarray(Image.open(path).convert('RGB'), np.float64)
    return torch.from_numpy(rgb.transpose(2, 0, 1) / 127.5 - 1).float()


@pytest.fixture
def class_root(tmp_path: Path) -> Path:
    root = tmp_path / 'imagenet'
    write_image(root / 'train' / 'n02' / 'b.png', 255)
    write_image(root / 'train' / 'n02' / 'sub' / 'c.PNG', 0)
    write_image(root / 'train' / 'n01' / 'a.png', 128, mode='L')
    (root / 'train' / 'n01' / 'notes.txt').write_text('not an image')
    write_image(root / 'train' / '.cache' / 'x.png', 1)
    return root


def test_class_layout(class_root):
    dataset = DATASETS.build(dict(type='ImageFolderDataset',
                                  data_root=str(class_root),
                                  data_prefix=dict(img_path='train')))
    assert len(dataset) == 3
    assert dataset.metainfo['classes'] == ('n01', 'n02')
    labels = [dataset[i]['data_samples']['label'] for i in range(3)]
    assert labels == [0, 1, 1]
    assert [dataset[i]['data_samples']['index'] for i in range(3)] == [0, 1, 2]
    train = class_root / 'train'
    files = [train / 'n01' / 'a.png', train / 'n02' / 'b.png',
             train / 'n02' / 'sub' / 'c.PNG']
    for i, path in enumerate(files):
        image = dataset[i]['inputs']
        assert image.dtype == torch.float32
        torch.testing.assert_close(image, expected(path), atol=1e-6, rtol=0)
    gray = dataset[0]['inputs']
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[0], gray[2])
    with pytest.raises(IndexError):
        dataset[3]


def test_flat_layout_and_extensions(tmp_path):
    write_image(tmp_path / 'b.png', 10)
    write_image(tmp_path / 'a.jpg', 20)
    (tmp_path / 'c.txt').write_text('x')
    dataset = ImageFolderDataset(str(tmp_path))
    assert len(dataset) == 2
    assert all(dataset[i]['data_samples']['label'] == -1 for i in range(2))
    for i, name in enumerate(('a.jpg', 'b.png')):    # sorted by name
        torch.testing.assert_close(dataset[i]['inputs'],
                                   expected(tmp_path / name), atol=1e-6,
                                   rtol=0)
    assert dataset.metainfo['classes'] == ()
    assert len(ImageFolderDataset(str(tmp_path), extensions=['.PNG'])) == 1


def test_rgb_order(tmp_path):
    path = tmp_path / 'red.png'
    Image.fromarray(np.array([[[255, 0, 0]]], np.uint8)).save(path)
    red = ImageFolderDataset(str(tmp_path))[0]['inputs'][:, 0, 0]
    assert red.tolist() == [1.0, -1.0, -1.0]


def test_empty_and_missing_folder(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='empty'):
        ImageFolderDataset(str(tmp_path / 'empty'))
    with pytest.raises(FileNotFoundError, match='missing'):
        ImageFolderDataset(str(tmp_path / 'missing'))


@pytest.fixture
def bad_root(tmp_path: Path) -> Path:
    write_image(tmp_path / 'a_good.png', 0)
    buffer = tmp_path / 'full.jpg'
    Image.fromarray(np.random.default_rng(0).integers(
        0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, quality=95)
    data = buffer.read_bytes()
    buffer.unlink()
    (tmp_path / 'b_truncated.jpg').write_bytes(data[:len(data) // 2])
    (tmp_path / 'c_garbage.png').write_bytes(b'not an image at all')
    write_image(tmp_path / 'd_good.png', 255)
    return tmp_path


@pytest.mark.parametrize('index, name', [(1, 'b_truncated.jpg'),
                                         (2, 'c_garbage.png')])
def test_bad_file_error_names_the_file(bad_root, index, name):
    dataset = ImageFolderDataset(str(bad_root))
    with pytest.raises(BadImageError, match=name):
        dataset[index]


def test_missing_file_error_names_the_file(tmp_path):
    path = write_image(tmp_path / 'gone.png', 0)
    dataset = ImageFolderDataset(str(tmp_path))
    path.unlink()
    with pytest.raises(BadImageError, match='gone.png'):
        dataset[0]


def test_skip_bad_files(bad_root):
    dataset = ImageFolderDataset(str(bad_root), skip_bad_files=True)
    with pytest.warns(UserWarning) as record:
        sample = dataset[1]
    messages = ' '.join(str(w.message) for w in record)
    assert 'b_truncated.jpg' in messages and 'c_garbage.png' in messages
    assert sample['data_samples']['index'] == 3
    torch.testing.assert_close(sample['inputs'],
                               expected(bad_root / 'd_good.png'), atol=1e-6,
                               rtol=0)


def test_all_bad_files_give_up(tmp_path):
    (tmp_path / 'x.png').write_bytes(b'junk')
    dataset = ImageFolderDataset(str(tmp_path), skip_bad_files=True,
                                 max_refetch=2)
    with pytest.warns(UserWarning), pytest.raises(BadImageError, match='3'):
        dataset[0]


def test_dataloader_batch(class_root):
    dataset = ImageFolderDataset(str(class_root / 'train'))
    batch = next(iter(DataLoader(dataset, batch_size=3,
                                 collate_fn=default_collate)))
    assert batch['inputs'].shape == (3, 3, 6, 9)
    torch.testing.assert_close(batch['inputs'][2], expected(
        class_root / 'train' / 'n02' / 'sub' / 'c.PNG'), atol=1e-6, rtol=0)
    assert batch['data_samples']['label'].tolist() == [0, 1, 1]
    assert batch['data_samples']['index'].tolist() == [0, 1, 2]
