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


def adm_center_crop(array: np.ndarray, size: int) -> np.ndarray:
    """ADM's ``center_crop_arr`` (guided-diffusion's image_datasets.py) as
    published: halve with a box filter while the shorter side is at least
    twice ``size``, resize the shorter side to ``size`` (bicubic, sides
    rounded), crop the centre (offsets rounded down)."""
    image = Image.fromarray(array)
    while min(image.size) >= 2 * size:
        image = image.resize(tuple(x // 2 for x in image.size),
                             resample=Image.BOX)
    scale = size / min(image.size)
    image = image.resize(tuple(round(x * scale) for x in image.size),
                         resample=Image.BICUBIC)
    out = np.asarray(image)
    top, left = (out.shape[0] - size) // 2, (out.shape[1] - size) // 2
    return out[top:top + size, left:left + size]


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
    resized = load_reference(tmp_path, size=6)
    assert resized.shape == (3, 6, 6, 3)
    for got, array in zip(resized, (b, a, None)):
        if array is not None:
            np.testing.assert_array_equal(got, adm_center_crop(array, 6))


def test_reference_folder_resized_as_adm_does(tmp_path):
    """Shorter side 8 and 7 (no halving), 16 and 13 (halved once), 27
    (twice), landscape and portrait, odd margins: each image equals ADM's
    center_crop_arr."""
    rng = np.random.default_rng(1)
    arrays = {}
    for name, shape in (('a', (8, 11)), ('b', (16, 20)), ('c', (30, 13)),
                        ('d', (27, 40)), ('e', (7, 13))):
        y, x = np.mgrid[:shape[0], :shape[1]]
        smooth = np.stack([x * 9, y * 7, (x + y) * 5], -1) % 256
        arrays[name] = (smooth + rng.integers(0, 40, smooth.shape)).clip(
            0, 255).astype(np.uint8)
        _png(tmp_path / f'{name}.png', arrays[name])
    loaded = load_reference(tmp_path, size=6)
    for got, name in zip(loaded, 'abcde'):
        np.testing.assert_array_equal(got, adm_center_crop(arrays[name], 6),
                                      err_msg=name)


def test_reference_and_samples_npz(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (3, 4, 4, 3),
                                               dtype=np.uint8)
    np.savez(tmp_path / 'ref.npz', arr_0=images, mu=np.zeros(2))
    np.testing.assert_array_equal(load_reference(tmp_path / 'ref.npz'),
                                  images)
    loaded, labels = load_samples(tmp_path / 'ref.npz')
    np.testing.assert_array_equal(loaded, images)
    assert labels is None
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
