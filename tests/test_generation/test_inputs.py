"""fqzoo.generation.inputs: samples and reference images as uint8 arrays."""
import numpy as np
import pytest
import torch
from PIL import Image

from fqzoo.generation.inputs import (
    UInt8Images,
    load_reference,
    load_samples,
)


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_reference_folder(tmp_path):
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in 'ab')
    _png(tmp_path / 'b.png', b)
    _png(tmp_path / 'sub' / 'a.png', a)
    _png(tmp_path / '.hidden' / 'c.png', a)
    (tmp_path / 'notes.txt').write_text('not an image')
    images = load_reference(tmp_path)
    assert images.shape == (2, 8, 8, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[0], b)      # 'b.png' < 'sub/a.png'
    np.testing.assert_array_equal(images[1], a)
    _png(tmp_path / 'wide.png', rng.integers(0, 256, (8, 12, 3),
                                             dtype=np.uint8))
    with pytest.raises(ValueError, match='reference size'):
        load_reference(tmp_path)
    assert load_reference(tmp_path, size=6).shape == (3, 6, 6, 3)


def test_reference_and_samples_npz(tmp_path):
    images = np.zeros((3, 4, 4, 3), np.uint8)
    np.savez(tmp_path / 'ref.npz', arr_0=images, mu=np.zeros(2))
    np.testing.assert_array_equal(load_reference(tmp_path / 'ref.npz'),
                                  images)
    loaded, labels = load_samples(tmp_path / 'ref.npz')
    assert loaded.shape == (3, 4, 4, 3) and labels is None
    np.savez(tmp_path / 's.npz', images, np.array([2, 0, 1]))
    assert load_samples(tmp_path / 's.npz')[1].tolist() == [2, 0, 1]
    np.savez(tmp_path / 'float.npz', images.astype(np.float32))
    with pytest.raises(ValueError, match='uint8'):
        load_samples(tmp_path / 'float.npz')
    with pytest.raises(ValueError, match='image size'):
        load_reference('fashion-mnist:test')
    with pytest.raises(FileNotFoundError, match='neither'):
        load_reference(tmp_path / 'missing.png')


def test_uint8_dataset():
    images = np.arange(2 * 3 * 4 * 3, dtype=np.uint8).reshape(2, 3, 4, 3)
    item = UInt8Images(images)[1]
    assert item.dtype == torch.uint8 and item.shape == (3, 3, 4)
    assert torch.equal(item, torch.from_numpy(images[1]).permute(2, 0, 1))
