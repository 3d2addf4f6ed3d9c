"""PackTokenizerInputs by value: ``x / 127.5 - 1`` in RGB order, written
out with NumPy, on images whose channels, rows and columns all differ."""
import numpy as np
import pytest
import torch

from fqzoo.registry import TRANSFORMS


def ramps(height: int, width: int, channels: int) -> np.ndarray:
    """uint8 ``[H, W, C]``: channel c is ``(7 x + 11 y + 60 c) mod 256``, so
    swapped channels, transposed axes or flips all change the values."""
    y, x, c = np.mgrid[:height, :width, :channels]
    return ((7 * x + 11 * y + 60 * c) % 256).astype(np.uint8)


def test_packs_bgr_to_rgb_by_hand():
    pack = TRANSFORMS.build(dict(type='PackTokenizerInputs'))
    bgr = ramps(5, 7, 3)
    out = pack(dict(img=bgr, gt_label=4, sample_idx=7))
    assert set(out) == {'inputs', 'data_samples'}
    assert out['inputs'].dtype == torch.float32
    expected = np.stack([bgr[..., 2], bgr[..., 1], bgr[..., 0]]) / 127.5 - 1
    np.testing.assert_allclose(out['inputs'].numpy(), expected, rtol=0,
                               atol=1e-6)
    assert out['data_samples'] == dict(label=4, index=7)
    # a pure blue BGR pixel is blue in RGB: [-1, -1, 1]
    blue = np.zeros((1, 1, 3), np.uint8)
    blue[..., 0] = 255
    assert pack(dict(img=blue))['inputs'][:, 0, 0].tolist() == [-1, -1, 1]


@pytest.mark.parametrize('shape', [(4, 5), (4, 5, 1)])
def test_gray_becomes_three_equal_channels(shape):
    pack = TRANSFORMS.build(dict(type='PackTokenizerInputs'))
    gray = ramps(4, 5, 1).reshape(shape)
    out = pack(dict(img=gray))
    expected = gray.reshape(4, 5) / 127.5 - 1
    for channel in out['inputs'].numpy():
        np.testing.assert_allclose(channel, expected, rtol=0, atol=1e-6)
    assert out['data_samples'] == dict(label=-1, index=-1)


def test_rgb_order_kept_and_alpha_dropped():
    pack = TRANSFORMS.build(dict(type='PackTokenizerInputs',
                                 channel_order='rgb'))
    rgba = ramps(3, 6, 4)
    out = pack(dict(img=rgba))['inputs'].numpy()
    np.testing.assert_allclose(
        out, rgba[..., :3].transpose(2, 0, 1) / 127.5 - 1, rtol=0, atol=1e-6)


def test_rejects_float_images_and_bad_order():
    with pytest.raises(TypeError, match='uint8'):
        TRANSFORMS.build(dict(type='PackTokenizerInputs'))(
            dict(img=np.zeros((2, 2, 3), np.float32)))
    with pytest.raises(ValueError, match='channel_order'):
        TRANSFORMS.build(dict(type='PackTokenizerInputs', channel_order='x'))
