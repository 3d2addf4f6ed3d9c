import numpy as np
import pytest
import torch
from PIL import Image

from fqzoo.datasets import BundledPhotoPatches
from fqzoo.datasets.photo_patches import PHOTO_NAMES, load_photo, to_rgb
from fqzoo.registry import DATASETS


@pytest.fixture(scope='module')
def train() -> BundledPhotoPatches:
    return DATASETS.build(dict(type='BundledPhotoPatches', split='train',
                               num_samples=50))


@pytest.fixture(scope='module')
def val() -> BundledPhotoPatches:
    return DATASETS.build(dict(type='BundledPhotoPatches', split='val'))


def test_sample_format(train, val):
    assert len(train) == 50 and len(val) == 64
    for dataset in (train, val):
        for index in (0, 7, len(dataset) - 1):
            sample = dataset[index]
            image = sample['inputs']
            assert image.shape == (3, 32, 32) and image.dtype == torch.float32
            assert -1 <= image.min() and image.max() <= 1
            assert sample['data_samples']['index'] == index
            assert 0 <= sample['data_samples']['label'] < len(PHOTO_NAMES)
    with pytest.raises(IndexError):
        train[50]


def test_crops_depend_only_on_seed_and_index(train):
    np.random.seed(1)
    torch.manual_seed(1)
    first = train[3]
    np.random.seed(2)
    torch.manual_seed(2)
    again = train[3]
    other = BundledPhotoPatches(split='train', num_samples=50)[3]
    assert torch.equal(first['inputs'], again['inputs'])
    assert torch.equal(first['inputs'], other['inputs'])
    assert first['data_samples'] == other['data_samples']
    assert not torch.equal(train[3]['inputs'], train[4]['inputs'])
    reseeded = BundledPhotoPatches(split='train', num_samples=50, seed=1)
    assert not torch.equal(first['inputs'], reseeded[3]['inputs'])


def test_val_photos_are_held_out(train, val):
    assert set(val.photo_names) == {'coffee', 'grace_hopper'}
    assert not set(train.photo_names) & set(val.photo_names)
    assert set(train.photo_names) | set(val.photo_names) == set(PHOTO_NAMES)
    val_labels = {PHOTO_NAMES.index(n) for n in val.photo_names}
    assert {train[i]['data_samples']['label'] for i in range(50)}.isdisjoint(
        val_labels)
    assert {val[i]['data_samples']['label'] for i in range(64)} == val_labels
    assert val.metainfo['classes'] == PHOTO_NAMES


def _direct(name: str) -> np.ndarray:
    """A bundled photo read from its package, without fqzoo's loader."""
    if name == 'stereo_motorcycle':
        from skimage.data import stereo_motorcycle
        return stereo_motorcycle()[0]
    if name in ('china', 'flower'):
        from sklearn.datasets import load_sample_image
        return load_sample_image(f'{name}.jpg')
    if name == 'grace_hopper':
        from matplotlib.cbook import get_sample_data
        with get_sample_data('grace_hopper.jpg') as file:
            return np.asarray(Image.open(file))
    from skimage import data
    return getattr(data, name)()


@pytest.mark.parametrize('kwargs', [
    dict(split='train', num_samples=12),
    dict(split='val', val_photos=['china'], crop_size=16, scale=0.125,
         num_samples=4)])
def test_samples_are_pil_resized_crops_by_hand(kwargs):
    """Sample i by hand: replay ``default_rng([seed, i])`` (photo, top,
    left, flip), resize the photo read from its package with PIL bicubic,
    slice the window, flip with NumPy, ``x / 127.5 - 1``."""
    dataset = BundledPhotoPatches(**kwargs)
    crop, scale = dataset.crop_size, dataset.scale
    flips = 0
    for index in range(len(dataset)):
        rng = np.random.default_rng([0, index])
        name = dataset.photo_names[int(rng.integers(len(dataset.photo_names)))]
        photo = Image.fromarray(_direct(name))
        photo = np.asarray(photo.resize(
            (round(photo.width * scale), round(photo.height * scale)),
            Image.Resampling.BICUBIC))
        top = int(rng.integers(photo.shape[0] - crop + 1))
        left = int(rng.integers(photo.shape[1] - crop + 1))
        window = photo[top:top + crop, left:left + crop]
        if kwargs['split'] == 'train' and rng.random() < 0.5:
            window = np.flip(window, axis=1)
            flips += 1
        sample = dataset[index]
        np.testing.assert_allclose(sample['inputs'].numpy(),
                                   window.transpose(2, 0, 1) / 127.5 - 1,
                                   rtol=0, atol=1e-6, err_msg=str(index))
        assert sample['data_samples'] == dict(label=PHOTO_NAMES.index(name),
                                              index=index)
    assert kwargs['split'] == 'val' or 0 < flips < len(dataset)


def test_flip_only_in_train():
    flip = BundledPhotoPatches(split='train', num_samples=40)
    plain = BundledPhotoPatches(split='train', num_samples=40, flip=False)
    pairs = [(flip[i]['inputs'], plain[i]['inputs']) for i in range(40)]
    flipped = [torch.equal(a, b.flip(-1)) for a, b in pairs]
    assert any(flipped) and not all(flipped)
    assert all(torch.equal(a, b) or f for (a, b), f in zip(pairs, flipped))
    assert BundledPhotoPatches(split='val', flip=True).flip is False


@pytest.mark.parametrize('kwargs, match', [
    (dict(split='test'), 'split'),
    (dict(val_photos=['lena']), 'val_photos.*lena'),
    (dict(val_photos=[]), 'val_photos'),
    (dict(val_photos=PHOTO_NAMES), 'val_photos'),
    (dict(crop_size=512), 'crop_size'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BundledPhotoPatches(**kwargs)


def test_every_photo_loads_as_its_package_gives_it():
    for name in PHOTO_NAMES:
        photo = load_photo(name)
        assert photo.dtype == np.uint8 and min(photo.shape[:2]) >= 128, name
        np.testing.assert_array_equal(photo, _direct(name), err_msg=name)


def test_gray_and_rgba_become_rgb():
    y, x = np.mgrid[:4, :5]
    gray = (17 * x + 40 * y).astype(np.uint8)
    rgba = np.stack([x * 50, y * 60, 255 - x * 30, 40 + 50 * y],
                    -1).astype(np.uint8)
    np.testing.assert_array_equal(to_rgb(Image.fromarray(gray)),
                                  np.repeat(gray[..., None], 3, -1))
    np.testing.assert_array_equal(
        to_rgb(Image.fromarray(rgba, mode='RGBA')), rgba[..., :3])


def test_hue_rotation_keeps_greys_and_brightness_and_cycles_channels():
    from fqzoo.datasets.photo_patches import hue_rotation
    rot = hue_rotation(0.7)
    torch.testing.assert_close(rot @ rot.T, torch.eye(3), atol=1e-6, rtol=0)
    grey = torch.tensor([0.3, 0.3, 0.3])
    torch.testing.assert_close(rot @ grey, grey)
    colour = torch.tensor([0.9, 0.2, 0.1])
    assert (rot @ colour).sum().item() == pytest.approx(colour.sum().item(),
                                                       abs=1e-6)
    # A third of a turn about the grey axis sends red to green, green to
    # blue, blue to red.
    cycle = torch.tensor([[0., 0, 1], [1, 0, 0], [0, 1, 0]])
    torch.testing.assert_close(hue_rotation(2 * np.pi / 3), cycle,
                               atol=1e-6, rtol=0)


def test_colour_jitter_is_seeded_in_range_and_train_only():
    kwargs = dict(num_samples=20, colour=True, flip=False)
    jittered = BundledPhotoPatches(split='train', **kwargs)
    plain = BundledPhotoPatches(split='train', num_samples=20, flip=False)
    again = BundledPhotoPatches(split='train', **kwargs)
    changed = 0
    for i in range(20):
        x = jittered[i]['inputs']
        assert torch.equal(x, again[i]['inputs'])
        assert -1 <= x.min() and x.max() <= 1
        # brightness survives the jitter up to clamping
        ref = plain[i]['inputs']
        changed += not torch.allclose(x, ref, atol=0.05)
        assert (x.mean() - ref.mean()).abs() < 0.25
    assert changed >= 15
    val = BundledPhotoPatches(split='val', colour=True, num_samples=8)
    plain_val = BundledPhotoPatches(split='val', num_samples=8)
    assert all(torch.equal(val[i]['inputs'], plain_val[i]['inputs'])
               for i in range(8))


def test_multi_scale_crops_come_from_the_drawn_scale():
    from fqzoo.datasets.photo_patches import scaled_photo
    scales = (0.1, 0.16)
    dataset = BundledPhotoPatches(split='train', num_samples=12, flip=False,
                                  scales=scales, crop_size=16)
    found = set()
    for i in range(12):
        sample = dataset[i]
        name = PHOTO_NAMES[sample['data_samples']['label']]
        crop = sample['inputs']
        hits = []
        for f in scales:
            photo = scaled_photo(name, f)
            windows = photo.unfold(1, 16, 1).unfold(2, 16, 1)
            match = (windows - crop[:, None, None]).abs().amax(
                dim=(0, 3, 4)) == 0
            if match.any():
                hits.append(f)
        assert len(hits) == 1, (i, hits)
        found.add(hits[0])
    assert found == set(scales)
    # the held-out photos never appear in train, at any scale
    assert {PHOTO_NAMES[dataset[i]['data_samples']['label']]
            for i in range(12)}.isdisjoint({'coffee', 'grace_hopper'})
    val = BundledPhotoPatches(split='val', scales=scales, crop_size=16)
    assert val.scales == (val.scale, )


def test_colour_jitter_options_channel_order_only():
    kwargs = dict(num_samples=12, flip=False)
    perm = BundledPhotoPatches(split='train', colour=dict(
        max_hue=0, saturation=(1, 1)), **kwargs)
    plain = BundledPhotoPatches(split='train', **kwargs)
    permuted = 0
    for i in range(12):
        x, ref = perm[i]['inputs'], plain[i]['inputs']
        # some order of the original channels, values kept
        assert any(torch.allclose(x, ref[list(order)], atol=1e-5)
                   for order in [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0),
                                 (2, 0, 1), (2, 1, 0)])
        permuted += not torch.allclose(x, ref, atol=1e-5)
    assert permuted >= 6


def test_colour_jitter_without_channel_order_keeps_greys_and_draws():
    from fqzoo.datasets.photo_patches import hue_rotation, jitter_colours
    crop = torch.zeros(3, 5, 6).uniform_(-0.8, 0.8)
    out = jitter_colours(crop, np.random.default_rng(3), max_hue=15,
                         saturation=(0.85, 1.15), permute=False)
    # by hand, with the draws of permute=True (the order is drawn, unused)
    rng = np.random.default_rng(3)
    rng.permutation(3)
    angle = np.radians(15) * rng.uniform(-1, 1)
    factor = rng.uniform(0.85, 1.15)
    rgb = hue_rotation(angle) @ ((crop + 1) / 2).reshape(3, -1)
    rgb = rgb.mean(0) + factor * (rgb - rgb.mean(0))
    torch.testing.assert_close(out, (rgb * 2 - 1).reshape(3, 5, 6))
    assert not torch.allclose(out, crop, atol=1e-3)
    # greys stay grey, and the next draw is the same as with permute=True
    grey = torch.zeros(1, 4, 4).uniform_(-1, 1).expand(3, 4, 4)
    rngs = [np.random.default_rng(5), np.random.default_rng(5)]
    out = jitter_colours(grey, rngs[0], max_hue=15, permute=False)
    jitter_colours(grey, rngs[1], max_hue=15, permute=True)
    torch.testing.assert_close(out, grey, atol=1e-6, rtol=0)
    assert rngs[0].random() == rngs[1].random()
    # in the dataset: brightness kept (up to clamping), only train jittered
    kwargs = dict(num_samples=12, flip=False)
    mild = BundledPhotoPatches(split='train', colour=dict(
        max_hue=15, saturation=(0.85, 1.15), permute=False), **kwargs)
    plain = BundledPhotoPatches(split='train', **kwargs)
    for i in range(12):
        x, ref = mild[i]['inputs'], plain[i]['inputs']
        assert (x.mean(0) - ref.mean(0)).abs().mean() < 0.02
