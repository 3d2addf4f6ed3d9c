import numpy as np
import pytest
import torch

from fqzoo.registry import TRANSFORMS


def test_packs_bgr_to_rgb_in_range():
    pack = TRANSFORMS.build(dict(type='PackTokenizerInputs'))
    img = np.zeros((2, 3, 3), np.uint8)
    img[..., 0] = 255  # blue in BGR
    out = pack(dict(img=img, gt_label=4, sample_idx=7))
    assert set(out) == {'inputs', 'data_samples'}
    assert out['inputs'].shape == (3, 2, 3)
    assert out['inputs'].dtype == torch.float32
    assert out['inputs'][:, 0, 0].tolist() == [-1.0, -1.0, 1.0]
    assert out['data_samples'] == dict(label=4, index=7)


@pytest.mark.parametrize('shape', [(4, 5), (4, 5, 1)])
def test_gray_becomes_three_channels(shape):
    pack = TRANSFORMS.build(dict(type='PackTokenizerInputs'))
    out = pack(dict(img=np.full(shape, 255, np.uint8)))
    assert out['inputs'].shape == (3, 4, 5) and out['inputs'].eq(1).all()
    assert out['data_samples'] == dict(label=-1, index=-1)


def test_rgb_order_and_alpha_dropped():
    pack = TRANSFORMS.build(dict(type='PackTokenizerInputs',
                                 channel_order='rgb'))
    img = np.zeros((1, 1, 4), np.uint8)
    img[..., 0] = 255
    assert pack(dict(img=img))['inputs'][:, 0, 0].tolist() == [1.0, -1.0, -1.0]


def test_rejects_float_images_and_bad_order():
    with pytest.raises(TypeError, match='uint8'):
        TRANSFORMS.build(dict(type='PackTokenizerInputs'))(
            dict(img=np.zeros((2, 2, 3), np.float32)))
    with pytest.raises(ValueError, match='channel_order'):
        TRANSFORMS.build(dict(type='PackTokenizerInputs', channel_order='x'))
