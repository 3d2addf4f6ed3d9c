import numpy as np
import pytest

from fqzoo.registry import TRANSFORMS


@pytest.mark.parametrize('shape, expected', [((40, 80, 3), (20, 40)),
                                             ((90, 30, 3), (60, 20)),
                                             ((10, 10), (20, 20))])
def test_resize_short_edge(shape, expected):
    resize = TRANSFORMS.build(dict(type='ResizeShortEdge', size=20))
    out = resize(dict(img=np.zeros(shape, np.uint8)))
    assert out['img'].shape[:2] == expected == out['img_shape']


def test_random_crop_is_a_window_and_varies():
    np.random.seed(0)
    crop = TRANSFORMS.build(dict(type='RandomCrop', crop_size=4))
    img = np.arange(10 * 12, dtype=np.uint8).reshape(10, 12)
    windows = set()
    for _ in range(20):
        out = crop(dict(img=img))['img']
        assert out.shape == (4, 4)
        top, left = divmod(int(out[0, 0]), 12)
        assert np.array_equal(out, img[top:top + 4, left:left + 4])
        windows.add((top, left))
    assert len(windows) > 1
    rect = TRANSFORMS.build(dict(type='RandomCrop', crop_size=(3, 5)))
    assert rect(dict(img=img))['img'].shape == (3, 5)


def test_random_crop_too_small():
    crop = TRANSFORMS.build(dict(type='RandomCrop', crop_size=16))
    with pytest.raises(ValueError, match='smaller than the crop'):
        crop(dict(img=np.zeros((8, 20), np.uint8)))


def test_mmcv_transforms_resolve():
    for cfg in (dict(type='LoadImageFromFile'), dict(type='CenterCrop',
                                                     crop_size=4),
                dict(type='RandomFlip', prob=0.5), dict(type='Resize',
                                                        scale=(8, 8))):
        assert TRANSFORMS.build(cfg) is not None
