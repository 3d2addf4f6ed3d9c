"""ResizeShortEdge and RandomCrop by value: PIL's / OpenCV's resize with the
same interpolation, windows cut by slicing, and the LlamaGen val pipeline
against the same steps written with PIL and NumPy."""
import cv2
import numpy as np
import pytest
from PIL import Image

from fqzoo.registry import TRANSFORMS


def structured(height: int, width: int, channels: int = 3) -> np.ndarray:
    """A uint8 image where a wrong resize, crop or channel order shows:
    a horizontal ramp in channel 0, a vertical ramp in channel 1, a 3-px
    checkerboard in channel 2 and a filled rectangle across all three."""
    y, x = np.mgrid[:height, :width]
    image = np.stack([x * 255 // max(width - 1, 1),
                      y * 255 // max(height - 1, 1),
                      np.where((x // 3 + y // 3) % 2, 220, 30)], -1)
    image[height // 4:height // 2, width // 3:width // 2] = (250, 10, 120)
    image = image.astype(np.uint8)
    return image[..., 0] if channels == 1 else image


@pytest.mark.parametrize('shape, expected', [((40, 80, 3), (20, 40)),
                                             ((90, 30, 3), (60, 20)),
                                             ((10, 10), (20, 20))])
def test_resize_short_edge_equals_pil_bicubic(shape, expected):
    image = structured(*shape[:2], channels=shape[2] if len(shape) > 2 else 1)
    resize = TRANSFORMS.build(dict(type='ResizeShortEdge', size=20))
    out = resize(dict(img=image.copy()))
    assert out['img'].shape[:2] == expected == out['img_shape']
    height, width = expected
    reference = np.asarray(Image.fromarray(image).resize(
        (width, height), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(out['img'], reference)


@pytest.mark.parametrize('interpolation, pil, cv', [
    ('bilinear', Image.Resampling.BILINEAR, cv2.INTER_LINEAR),
    ('nearest', Image.Resampling.NEAREST, cv2.INTER_NEAREST)])
def test_resize_short_edge_interpolation_and_backend(interpolation, pil, cv):
    image = structured(33, 47)
    for backend, reference in (
            ('pillow', np.asarray(Image.fromarray(image).resize(
                (17, 12), pil))),
            ('cv2', cv2.resize(image, (17, 12), interpolation=cv))):
        resize = TRANSFORMS.build(dict(type='ResizeShortEdge', size=12,
                                       interpolation=interpolation,
                                       backend=backend))
        np.testing.assert_array_equal(resize(dict(img=image))['img'],
                                      reference, err_msg=backend)


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


def test_random_crop_rectangle_is_the_window_of_its_offset():
    """(height, width) = (3, 5): the drawn offset replayed from NumPy's
    seeded global generator, the window cut by slicing."""
    image = structured(9, 14)
    rect = TRANSFORMS.build(dict(type='RandomCrop', crop_size=(3, 5)))
    for seed in range(6):
        np.random.seed(seed)
        out = rect(dict(img=image))
        np.random.seed(seed)
        top, left = np.random.randint(9 - 3 + 1), np.random.randint(14 - 5 + 1)
        np.testing.assert_array_equal(out['img'],
                                      image[top:top + 3, left:left + 5])
        assert out['img_shape'] == (3, 5)


def test_random_crop_too_small():
    crop = TRANSFORMS.build(dict(type='RandomCrop', crop_size=16))
    with pytest.raises(ValueError, match='smaller than the crop'):
        crop(dict(img=np.zeros((8, 20), np.uint8)))


def test_mmcv_center_crop_and_flip_resolve_and_act_by_value():
    image = structured(9, 12)
    centre = TRANSFORMS.build(dict(type='CenterCrop', crop_size=(6, 4)))
    # (width, height) = (6, 4): offsets round((12 - 6) / 2), round((9 - 4) / 2)
    np.testing.assert_array_equal(centre(dict(img=image))['img'],
                                  image[2:6, 3:9])
    flip = TRANSFORMS.build(dict(type='RandomFlip', prob=1.0,
                                 direction='horizontal'))
    np.testing.assert_array_equal(flip(dict(img=image.copy()))['img'],
                                  np.flip(image, axis=1))
    resize = TRANSFORMS.build(dict(type='Resize', scale=(8, 5)))
    assert resize(dict(img=image))['img'].shape == (5, 8, 3)
    assert TRANSFORMS.build(dict(type='LoadImageFromFile')) is not None


def test_llamagen_val_pipeline_by_hand(tmp_path):
    """The ImageNet val pipeline (pillow decode, shorter side to 16 bicubic,
    centre 16 crop, pack) on a 20x31 PNG equals PIL resize, NumPy slicing
    and ``x / 127.5 - 1`` in RGB order."""
    from mmengine.dataset import Compose
    image = structured(20, 31)
    path = tmp_path / 'photo.png'
    Image.fromarray(image).save(path)
    pipeline = Compose([TRANSFORMS.build(t) for t in (
        dict(type='LoadImageFromFile', imdecode_backend='pillow'),
        dict(type='ResizeShortEdge', size=16),
        dict(type='CenterCrop', crop_size=16),
        dict(type='PackTokenizerInputs'))])
    out = pipeline(dict(img_path=str(path)))['inputs']
    # 31 * 16 / 20 = 24.8 -> 25 wide; centre crop from round(9 / 2) = 4
    resized = np.asarray(Image.open(path).resize((25, 16),
                                                 Image.Resampling.BICUBIC))
    expected = resized[:, 4:20].transpose(2, 0, 1) / 127.5 - 1
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-6)
