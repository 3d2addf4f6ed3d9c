"""ImageFolderDataset, BundledPhotoPatches and fqzoo's transforms: values
that mutation testing showed no test pinned down (issue 22; the mutants
these tests kill are listed in docs/results/mutation/).

Every dataset here is built inside its test (no module-scoped fixture), so
mutmut maps each constructor to the tests that run it. References come
from the docstrings and docs/datasets.md, from PIL / NumPy / SciPy, or are
counted by hand.
"""
import logging
import math
import os
import re
import sys
import traceback
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from PIL import Image
from scipy.spatial.transform import Rotation

from fqzoo.datasets import (
    BadImageError,
    BundledPhotoPatches,
    ImageFolderDataset,
)
from fqzoo.datasets.photo_patches import (
    PHOTO_NAMES,
    hue_rotation,
    jitter_colours,
    load_photo,
)
from fqzoo.registry import TRANSFORMS

REPO = Path(__file__).resolve().parents[2]


def write_png(path: Path, value: int, size=(4, 5)) -> Path:
    """A small RGB PNG whose pixels differ by row, column and channel."""
    path.parent.mkdir(parents=True, exist_ok=True)
    y, x, c = np.mgrid[:size[0], :size[1], :3]
    array = ((value + 11 * x + 23 * y + 70 * c) % 256).astype(np.uint8)
    Image.fromarray(array).save(path)
    return path


def found(dataset: ImageFolderDataset) -> list:
    """The files a dataset lists, relative to its folder, in order."""
    return [os.path.relpath(dataset.get_data_info(i)['img_path'],
                            dataset.folder) for i in range(len(dataset))]


class FailingTransform:
    """A pipeline step that always raises, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, results: dict) -> dict:
        self.calls += 1
        raise ValueError(f'boom {self.calls}')


# --- ImageFolderDataset: scanning ----------------------------------------

def test_hidden_files_and_folders_are_ignored_in_both_layouts(tmp_path):
    flat = tmp_path / 'flat'
    write_png(flat / 'a.png', 1)
    write_png(flat / '.hidden.png', 2)
    assert found(ImageFolderDataset(str(flat))) == ['a.png']
    classes = tmp_path / 'classes'
    write_png(classes / 'n01' / 'a.png', 3)
    write_png(classes / 'n01' / '.b.png', 4)
    write_png(classes / 'n01' / '.thumbs' / 'c.png', 5)
    write_png(classes / 'n01' / 'deep' / 'd.png', 6)
    assert found(ImageFolderDataset(str(classes))) == [
        os.path.join('n01', 'a.png'), os.path.join('n01', 'deep', 'd.png')]


def test_class_folders_follow_symbolic_links(tmp_path):
    # Class folders are searched recursively through linked folders too
    # (a class assembled from links to images stored elsewhere).
    elsewhere = tmp_path / 'elsewhere'
    write_png(elsewhere / 'x.png', 7)
    root = tmp_path / 'root'
    write_png(root / 'n01' / 'a.png', 8)
    os.symlink(elsewhere, root / 'n01' / 'linked')
    dataset = ImageFolderDataset(str(root))
    assert found(dataset) == [os.path.join('n01', 'a.png'),
                              os.path.join('n01', 'linked', 'x.png')]
    assert [dataset[i]['data_samples']['label'] for i in range(2)] == [0, 0]


def test_flat_samples_enter_the_pipeline_with_label_minus_one(tmp_path):
    # Docstring: each sample is pipeline(dict(img_path, gt_label,
    # sample_idx)); in the flat layout the label is -1.
    write_png(tmp_path / 'a.png', 9)
    write_png(tmp_path / 'b.png', 10)
    seen = []
    dataset = ImageFolderDataset(str(tmp_path), pipeline=[
        lambda results: seen.append(dict(results)) or results])
    for i in range(2):
        dataset[i]
    assert seen == [
        dict(img_path=str(tmp_path / name), gt_label=-1, sample_idx=i)
        for i, name in enumerate(('a.png', 'b.png'))]


def test_empty_folder_message_lists_the_extensions(tmp_path):
    (tmp_path / 'notes.txt').write_text('no image')
    with pytest.raises(FileNotFoundError, match=re.escape(
            'No images with extensions .png, .jpg in '
            f'{os.path.join(str(tmp_path), "")!r}')):
        ImageFolderDataset(str(tmp_path), extensions=('.PNG', '.jpg'))


def test_pipeline_accepts_callables_beside_configs(tmp_path):
    write_png(tmp_path / 'a.png', 12)

    def tag(results):
        results['tag'] = 'seen'
        return results

    dataset = ImageFolderDataset(str(tmp_path), pipeline=[
        dict(type='LoadImageFromFile', imdecode_backend='pillow'), tag])
    sample = dataset[0]
    assert sample['tag'] == 'seen' and sample['img'].shape == (4, 5, 3)


def test_indices_keep_the_chosen_samples(tmp_path):
    for i, name in enumerate('abcd'):
        write_png(tmp_path / f'{name}.png', 20 * i)
    assert found(ImageFolderDataset(str(tmp_path), indices=2)) == [
        'a.png', 'b.png']
    chosen = ImageFolderDataset(str(tmp_path), indices=[3, 0])
    assert found(chosen) == ['d.png', 'a.png']
    assert chosen[0]['data_samples']['index'] == 0


def test_lazy_init_scans_on_first_use_without_mmengine_warning(tmp_path):
    # lazy_init=True: nothing is read until the first sample, so a folder
    # that is filled later is seen, and a missing one fails only then.
    ImageFolderDataset(str(tmp_path / 'missing'), lazy_init=True)
    dataset = ImageFolderDataset(str(tmp_path), lazy_init=True)
    write_png(tmp_path / 'late.png', 30)
    records = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        sample = dataset[0]
    finally:
        logger.removeHandler(handler)
    assert sample['inputs'].shape == (3, 4, 5)
    # __getitem__ initialises the dataset itself, so MMEngine does not
    # log that it had to call full_init on its own.
    assert [r.getMessage() for r in records] == []
    assert len(dataset) == 1


# --- ImageFolderDataset: errors and refetching ---------------------------

def test_pipeline_errors_name_the_file_and_the_error_type(tmp_path):
    path = write_png(tmp_path / 'a.png', 40)
    with pytest.raises(BadImageError, match=re.escape(
            f'Cannot load or transform image {str(path)!r}: '
            'ValueError: boom 1')):
        ImageFolderDataset(str(tmp_path), pipeline=[FailingTransform()])[0]


def test_a_pipeline_that_drops_the_image_names_it(tmp_path):
    path = write_png(tmp_path / 'a.png', 41)
    with pytest.raises(BadImageError, match=re.escape(
            f'The pipeline dropped image {str(path)!r}')):
        ImageFolderDataset(str(tmp_path), pipeline=[lambda results: None])[0]


def test_negative_indices_and_out_of_range_message(tmp_path):
    for i, name in enumerate('abc'):
        write_png(tmp_path / f'{name}.png', 50 + i)
    dataset = ImageFolderDataset(str(tmp_path))
    # Python's convention: -len is the first item, len is out of range.
    assert dataset[-3]['data_samples']['index'] == 0
    assert dataset[-1]['data_samples']['index'] == 2
    for index in (3, -4):
        with pytest.raises(IndexError, match=re.escape(
                f'index {index} out of range for 3 images')):
            dataset[index]


def refetch_until_giving_up(folder: Path, **kwargs):
    """Index 0 of a 2-image folder whose pipeline always fails: the
    transform's call count, the warnings and the final error."""
    failing = FailingTransform()
    dataset = ImageFolderDataset(str(folder), pipeline=[failing],
                                 skip_bad_files=True, **kwargs)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        with pytest.raises(BadImageError) as error:
            dataset[0]
    return failing.calls, record, str(error.value)


@pytest.mark.parametrize('kwargs, tries', [(dict(), 1001),
                                           (dict(max_refetch=2), 3)])
def test_skip_bad_files_tries_max_refetch_more_samples(tmp_path, kwargs,
                                                       tries):
    # Docstring: max_refetch (default 1000) following samples are tried
    # after the requested one, then the dataset gives up.
    write_png(tmp_path / 'a.png', 60)
    write_png(tmp_path / 'b.png', 61)
    calls, record, message = refetch_until_giving_up(tmp_path, **kwargs)
    assert calls == tries == len(record)
    # the folder is data_root joined with the default img_path ''
    folder = os.path.join(str(tmp_path), '')
    assert message == (f'{tries} images in a row from index 0 failed to '
                       f'load in {folder!r}')
    # the requested index first, then the next ones, wrapping around
    expected = [os.path.join(str(tmp_path), 'ab'[i % 2] + '.png')
                for i in range(tries)]
    assert [re.search(r"image '(.*?)'", str(w.message)).group(1)
            for w in record] == expected


def test_skip_warning_points_at_the_caller(tmp_path):
    # stacklevel=2: the warning is reported at the line that asked for the
    # sample, the frame just outside image_folder.py (here this test; with
    # a wrapper around __getitem__, such as mutmut's, the wrapper).
    write_png(tmp_path / 'a.png', 70)
    stacks = []

    def fail(results):
        stacks.append(traceback.extract_stack())
        raise ValueError('boom 1')

    dataset = ImageFolderDataset(str(tmp_path), pipeline=[fail],
                                 skip_bad_files=True, max_refetch=0)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        with pytest.raises(BadImageError):
            dataset[0]
    [warning] = record
    assert str(warning.message).endswith('ValueError: boom 1; skipped')
    module = os.path.realpath(sys.modules[ImageFolderDataset.__module__]
                              .__file__)
    [stack] = stacks
    inside = [i for i, frame in enumerate(stack)
              if os.path.realpath(frame.filename) == module]
    caller = stack[inside[0] - 1]
    assert (os.path.realpath(warning.filename), warning.lineno) == (
        os.path.realpath(caller.filename), caller.lineno)


# --- ImageFolderDataset: pre-flight requirement ---------------------------

@pytest.mark.parametrize('prefix, sub', [(dict(img_path='train'), 'train'),
                                         (None, ''), (dict(), '')])
def test_external_requirement_is_root_joined_with_img_path(prefix, sub):
    [req] = ImageFolderDataset.external_requirements(
        dict(data_root='data/imagenet', data_prefix=prefix))
    assert req.path == ('data/imagenet/' + sub if os.sep == '/'
                        else os.path.join('data/imagenet', sub))
    assert (req.what, req.arg) == ('image folder (ImageFolderDataset)',
                                   'data_root')
    assert req.source == (
        'your images in class-folder or flat layout, docs/datasets.md '
        '(ImageNet-1k: https://image-net.org/download.php, ILSVRC2012 '
        'train and val)')
    # the page the source points to documents this dataset
    assert '## ImageFolderDataset' in (REPO / 'docs' / 'datasets.md'
                                       ).read_text()


# --- BundledPhotoPatches -------------------------------------------------

def test_unknown_photo_message_lists_the_known_ones():
    known = ('astronaut, chelsea, coffee, rocket, hubble_deep_field, '
             'immunohistochemistry, retina, stereo_motorcycle, china, '
             'flower, grace_hopper')
    with pytest.raises(ValueError, match=re.escape(
            f"Unknown photo 'lena'; known: {known}")):
        load_photo('lena')
    with pytest.raises(ValueError, match=re.escape(
            f"Unknown val_photos ['lena']; known: {known}")):
        BundledPhotoPatches(val_photos=['lena'])


@pytest.mark.parametrize('val_photos', [(), PHOTO_NAMES])
def test_val_photos_message(val_photos):
    with pytest.raises(ValueError, match=re.escape(
            'val_photos must hold out at least one photo and leave at '
            'least one for training')):
        BundledPhotoPatches(val_photos=val_photos)


def test_default_lengths_and_scale():
    # Docstring: 2000 train / 64 val samples; photos downscaled by 0.25,
    # "a 512 px photo becomes 128 px".
    train = BundledPhotoPatches()
    assert (train.split, len(train)) == ('train', 2000)
    val = BundledPhotoPatches(split='val')
    assert (val.split, len(val)) == ('val', 64)
    from skimage.data import astronaut
    photo = train.photos[0][train.photo_names.index('astronaut')]
    by_hand = np.asarray(Image.fromarray(astronaut()).resize(
        (128, 128), Image.Resampling.BICUBIC))
    np.testing.assert_allclose(photo.numpy(),
                               by_hand.transpose(2, 0, 1) / 127.5 - 1,
                               rtol=0, atol=1e-6)


def test_val_split_reads_only_the_held_out_photos():
    val = BundledPhotoPatches(split='val', val_photos=['flower', 'china'],
                              num_samples=16)
    # in PHOTO_NAMES order, whatever the order given
    assert val.photo_names == ['china', 'flower']
    labels = {val[i]['data_samples']['label'] for i in range(16)}
    assert labels == {PHOTO_NAMES.index('china'),
                      PHOTO_NAMES.index('flower')}


def test_crop_size_may_equal_the_shorter_side_not_exceed_it():
    # coffee is 400 x 600; downscaled by 0.25 it is 100 x 150.
    whole = BundledPhotoPatches(split='val', val_photos=['coffee'],
                                crop_size=100, num_samples=1)
    assert whole[0]['inputs'].shape == (3, 100, 100)
    for crop_size in (120, 160):    # taller than the photo, or both sides
        with pytest.raises(ValueError, match=re.escape(
                "Photo 'coffee' downscaled by 0.25 is (100, 150), smaller "
                f'than crop_size {crop_size}; raise the scale or lower '
                'crop_size')):
            BundledPhotoPatches(split='val', val_photos=['coffee'],
                                crop_size=crop_size)


def test_out_of_range_sample_message():
    dataset = BundledPhotoPatches(split='val', num_samples=5)
    for index in (5, -1):
        with pytest.raises(IndexError, match=re.escape(
                f'index {index} out of range for 5 samples')):
            dataset[index]


def test_hue_rotation_is_the_rounded_exact_rotation():
    # SciPy's rotation about (1, 1, 1) / sqrt(3), built in float64 from a
    # rotation vector, rounded once to float32: hue_rotation computes in
    # float64 and rounds only at the end.
    axis = np.ones(3) / np.sqrt(3)
    for angle in np.linspace(-np.pi, np.pi, 41):
        exact = Rotation.from_rotvec(angle * axis).as_matrix()
        assert torch.equal(hue_rotation(float(angle)),
                           torch.from_numpy(exact).float()), angle


def test_colour_jitter_defaults_by_hand():
    # Docstring defaults: channel order drawn and used, hue up to 180
    # degrees, saturation factor in (0.6, 1.4).
    crop = torch.from_numpy(np.random.default_rng(9).uniform(
        -0.9, 0.9, (3, 4, 5))).float()
    for seed in range(4):
        out = jitter_colours(crop, np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        order = rng.permutation(3)
        angle = math.pi * rng.uniform(-1, 1)
        factor = rng.uniform(0.6, 1.4)
        # Rodrigues' rotation by SciPy, saturation about the pixel's grey
        rot = Rotation.from_rotvec(angle * np.ones(3) / np.sqrt(3))
        rgb = (crop[order].numpy().reshape(3, -1).astype(np.float64) + 1) / 2
        rgb = rot.as_matrix() @ rgb
        rgb = rgb.mean(0) + factor * (rgb - rgb.mean(0))
        expected = np.clip(rgb * 2 - 1, -1, 1).reshape(3, 4, 5)
        np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-5,
                                   err_msg=str(seed))


# --- transforms ----------------------------------------------------------

def test_transform_reprs():
    assert repr(TRANSFORMS.build(dict(
        type='PackTokenizerInputs', channel_order='rgb'))) == (
        "PackTokenizerInputs(channel_order='rgb')")
    assert repr(TRANSFORMS.build(dict(type='ResizeShortEdge', size=8))) == (
        "ResizeShortEdge(size=8, interpolation='bicubic', backend='pillow')")
    assert repr(TRANSFORMS.build(dict(type='RandomCrop', crop_size=(3, 4)))
                ) == 'RandomCrop(crop_size=(3, 4))'


def test_resize_short_edge_to_one_pixel_and_rejects_zero():
    image = (np.arange(2 * 5 * 3) * 7 % 256).astype(np.uint8).reshape(2, 5, 3)
    resize = TRANSFORMS.build(dict(type='ResizeShortEdge', size=1))
    out = resize(dict(img=image))
    # 5 * 1 / 2 = 2.5 rounds to 2 (half to even), PIL bicubic
    reference = np.asarray(Image.fromarray(image).resize(
        (2, 1), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(out['img'], reference)
    assert out['img_shape'] == (1, 2)
    for size in (0, -3):
        with pytest.raises(ValueError, match=re.escape(
                f'size must be >= 1, got {size}')):
            TRANSFORMS.build(dict(type='ResizeShortEdge', size=size))


def test_resize_short_edge_scale_is_size_over_shorter_side():
    # 2 x 5 to a shorter side of 3: scale 1.5, width 7.5 -> 8 (a wrong
    # scale stays small here, so it fails instead of exhausting memory).
    image = (np.arange(2 * 5 * 3) * 13 % 256).astype(np.uint8).reshape(
        2, 5, 3)
    out = TRANSFORMS.build(dict(type='ResizeShortEdge', size=3))(
        dict(img=image))
    reference = np.asarray(Image.fromarray(image).resize(
        (8, 3), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(out['img'], reference)


def test_random_crop_may_take_the_whole_image():
    image = (np.arange(4 * 6) * 9 % 256).astype(np.uint8).reshape(4, 6)
    for size in ((4, 6), (4, 2), (1, 6)):
        out = TRANSFORMS.build(dict(type='RandomCrop', crop_size=size))(
            dict(img=image))
        assert out['img'].shape == size == out['img_shape']
    whole = TRANSFORMS.build(dict(type='RandomCrop', crop_size=(4, 6)))
    np.testing.assert_array_equal(whole(dict(img=image))['img'], image)
