"""CodeDataset and FashionMNIST behaviour that mutation testing showed no
test pinned down (fqzoo/datasets/code_dataset.py and
fqzoo/datasets/fashion_mnist.py; docs/results/mutation/ lists the mutants
these tests kill).

References are computed another way: IDX files written byte by byte, data
byte counts by hand (``N * 28 * 28`` minus what was cut), messages and
pre-flight requirements from the documented arguments, value ranges from
the ``x / 127.5 - 1`` mapping of uint8 pixels (black is exactly -1, white
exactly +1).
"""
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_idx

from fqzoo.datasets.code_dataset import CodeDataset
from fqzoo.datasets.fashion_mnist import (
    DEBIAN_ROOT,
    IDX_IMAGES_MAGIC,
    IDX_LABELS_MAGIC,
    ROOT_ENV,
    FashionMNIST,
    load_fashion_mnist,
    read_idx,
)
from fqzoo.utils.preflight import Requirement

# --- CodeDataset ----------------------------------------------------------

def _write_codes(root: Path, shards, augmentations=(), labels=True,
                 **manifest) -> None:
    """A folder as tools/extract_codes.py writes it: one codes (and labels)
    file per array of ``shards``, and the manifest (plus ``manifest``)."""
    entries, start = [], 0
    for i, codes in enumerate(shards):
        np.save(root / f'codes_{i:05d}.npy', codes.astype(np.int16))
        if labels:
            np.save(root / f'labels_{i:05d}.npy',
                    np.arange(start, start + len(codes)) % 7)
        entries.append(dict(codes=f'codes_{i:05d}.npy',
                            labels=f'labels_{i:05d}.npy' if labels else None,
                            start=start, count=len(codes)))
        start += len(codes)
    (root / 'manifest.json').write_text(json.dumps(dict(
        manifest, count=start, augmentations=list(augmentations),
        shards=entries)))


def _grids(count, groups=2, side=3, seed=0):
    return np.random.default_rng(seed).integers(
        1, 50, (count, groups, side, side))


def test_missing_manifest_message_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        CodeDataset(str(tmp_path))
    assert str(err.value) == (
        f'{tmp_path}/manifest.json not found: extract codes with '
        'tools/extract_codes.py first (the manifest is written when the '
        'extraction is complete)')


def test_a_codes_count_that_does_not_match_is_named(tmp_path):
    """The codes file's own message: no '(and ... grids)' remark, which
    belongs to a labels file."""
    codes = _grids(4)
    _write_codes(tmp_path, [codes[:2], codes[2:]])
    np.save(tmp_path / 'codes_00001.npy', codes[:3].astype(np.int16))
    with pytest.raises(ValueError) as err:
        CodeDataset(str(tmp_path))
    assert str(err.value) == (
        f'{tmp_path}/codes_00001.npy holds 3 rows, the manifest '
        f'{tmp_path}/manifest.json says 2: extract the codes again into a '
        'new folder')


def test_a_labels_count_message_is_whole(tmp_path):
    codes = _grids(4)
    _write_codes(tmp_path, [codes[:2], codes[2:]])
    np.save(tmp_path / 'labels_00000.npy', np.arange(5))
    with pytest.raises(ValueError) as err:
        CodeDataset(str(tmp_path))
    assert str(err.value) == (
        f'{tmp_path}/labels_00000.npy holds 5 rows, the manifest '
        f'{tmp_path}/manifest.json says 2 (and codes_00000.npy holds 2 '
        'grids): extract the codes again into a new folder')


@pytest.mark.parametrize('view', [0, 1, 'random'])
def test_view_is_ignored_without_augmentation(tmp_path, view):
    """The docstring: ``view`` is ignored for codes extracted without
    augmentation; items stay ``[G, h, w]``."""
    codes = _grids(3, groups=2)
    _write_codes(tmp_path, [codes])
    dataset = CodeDataset(str(tmp_path), view=view)
    assert dataset.view is None
    for i in range(3):
        assert torch.equal(dataset[i]['codes'],
                           torch.from_numpy(codes[i]).long())


def test_shards_are_memory_mapped_read_only(tmp_path):
    """The module docstring: shards are memory-mapped (opening reads no
    data), and the mapping is read-only (a dataset never writes them)."""
    codes = _grids(5)
    _write_codes(tmp_path, [codes[:3], codes[3:]])
    dataset = CodeDataset(str(tmp_path))
    for arrays, name in ((dataset.codes, 'codes'),
                         (dataset.labels, 'labels')):
        for i, array in enumerate(arrays):
            assert isinstance(array, np.memmap), name
            assert array.mode == 'r' and not array.flags.writeable
            assert Path(array.filename) == tmp_path / f'{name}_{i:05d}.npy'
    # Rewriting a shard in place shows through the open dataset: its
    # rows are read from the file at access, not copied at opening.
    new = np.lib.format.open_memmap(tmp_path / 'codes_00001.npy', 'r+')
    new[1] = 49
    new.flush()
    del new
    assert torch.equal(dataset[4]['codes'], torch.full((2, 3, 3), 49))


def test_layout_takes_the_manifests_codebook_sizes(tmp_path):
    """Without a ``token_layout`` the manifest's ``codebook_sizes`` fill
    it; a layout's own sizes win (``setdefault``)."""
    _write_codes(tmp_path, [_grids(2, side=4)], code_shape=[2, 4, 4],
                 codebook_sizes=[16, 8])
    assert CodeDataset(str(tmp_path)).token_layout == dict(
        codebook_sizes=[16, 8], grid=[4, 4])
    _write_codes(tmp_path, [_grids(2, side=4)], code_shape=[2, 4, 4],
                 codebook_sizes=[16, 8],
                 token_layout=dict(codebook_sizes=[32]))
    assert CodeDataset(str(tmp_path)).token_layout == dict(
        codebook_sizes=[32], grid=[4, 4])


def test_layout_grid_of_a_two_dimensional_code_shape(tmp_path):
    """``grid`` is the last two sizes of ``code_shape``, also when the
    shape has only those two."""
    codes = np.random.default_rng(1).integers(0, 9, (2, 3, 5))
    _write_codes(tmp_path, [codes], code_shape=[3, 5])
    dataset = CodeDataset(str(tmp_path))
    assert dataset.token_layout == dict(grid=[3, 5])
    assert torch.equal(dataset[1]['codes'], torch.from_numpy(codes[1]))
    _write_codes(tmp_path, [codes], code_shape=[5])
    assert CodeDataset(str(tmp_path)).token_layout == {}


def test_negative_indices_down_to_minus_length(tmp_path):
    codes = _grids(5)
    _write_codes(tmp_path, [codes[:2], codes[2:]])
    dataset = CodeDataset(str(tmp_path))
    for index in range(-5, 0):
        item = dataset[index]
        assert torch.equal(item['codes'],
                           torch.from_numpy(codes[5 + index]).long())
        assert item['label'] == (5 + index) % 7
    for index in (5, -6):
        with pytest.raises(IndexError) as err:
            dataset[index]
        assert str(err.value) == (f'index {index} out of range for 5 '
                                  'samples')


def test_code_dataset_requires_the_manifest(tmp_path):
    """The pre-flight requirement names the file the constructor opens."""
    [req] = CodeDataset.external_requirements(
        dict(data_root='work_dirs/codes/train', view=None))
    assert req == Requirement(
        what='extracted codes (CodeDataset)', arg='data_root',
        path='work_dirs/codes/train/manifest.json',
        source='python tools/extract_codes.py TOKENIZER_CONFIG CKPT '
        '--split SPLIT --out DATA_ROOT (docs/tools.md)')
    assert req.filename is None and req.cache is None and req.keys == ()
    _write_codes(tmp_path, [_grids(1)])
    [req] = CodeDataset.external_requirements(
        dict(data_root=str(tmp_path), view='random'))
    assert Path(req.path).is_file()
    assert json.loads(Path(req.path).read_text())['count'] == 1


# --- Fashion-MNIST IDX files ------------------------------------------------

def test_unreadable_idx_files_are_named(tmp_path):
    """A cut gzip stream (EOFError), a non-gzip ``.gz`` (OSError) and a
    folder (OSError) all give the message naming the file."""
    whole = gzip.compress(b'\x00\x00\x08\x01' + b'\x00\x00\x00\x03' +
                          bytes([4, 5, 6]))
    cut = tmp_path / 'cut-labels-idx1-ubyte.gz'
    cut.write_bytes(whole[:-9])
    plain = tmp_path / 'plain-labels-idx1-ubyte.gz'
    plain.write_bytes(b'not gzip at all')
    folder = tmp_path / 'folder-idx1-ubyte'
    folder.mkdir()
    for path in (cut, plain, folder):
        with pytest.raises(ValueError) as err:
            read_idx(str(path), IDX_LABELS_MAGIC)
        assert str(err.value).startswith(
            f'Cannot read IDX file {str(path)!r}: '), err.value
        assert len(str(err.value)) > len(f'Cannot read IDX file '
                                         f'{str(path)!r}: ')


def test_files_shorter_than_a_magic_number(tmp_path):
    """Three bytes hold no magic number (None), even when they are the
    first three of the right one; four bytes that are the right magic
    number pass it and fail on the missing sizes."""
    short = tmp_path / 'three'
    short.write_bytes(b'\x00\x08\x03')  # 0x000803 == IDX_IMAGES_MAGIC
    with pytest.raises(ValueError) as err:
        read_idx(str(short), IDX_IMAGES_MAGIC)
    assert str(err.value) == (
        f'{str(short)!r} is not an IDX file of the expected kind: magic '
        'number None, expected 2051')
    empty = tmp_path / 'empty'
    empty.write_bytes(b'')
    with pytest.raises(ValueError, match='magic number None, expected'):
        read_idx(str(empty), IDX_LABELS_MAGIC)
    four = tmp_path / 'four'
    four.write_bytes(b'\x00\x00\x08\x01')
    with pytest.raises(ValueError) as err:
        read_idx(str(four), IDX_LABELS_MAGIC)
    assert str(err.value) == (f'{str(four)!r}: 4 bytes end inside the '
                              '8-byte IDX header')
    six = tmp_path / 'six'          # the sizes cut inside their first word
    six.write_bytes(b'\x00\x00\x08\x03\x00\x00')
    with pytest.raises(ValueError) as err:
        read_idx(str(six), IDX_IMAGES_MAGIC)
    assert str(err.value) == (f'{str(six)!r}: 6 bytes end inside the '
                              '16-byte IDX header')


def test_truncated_data_message_counts_the_data_bytes(tmp_path):
    path = write_idx(tmp_path / 'images',
                     np.random.default_rng(0).integers(0, 256, (3, 28, 28)),
                     IDX_IMAGES_MAGIC)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError) as err:
        read_idx(str(path), IDX_IMAGES_MAGIC)
    data_bytes = 3 * 28 * 28 - 10
    assert str(err.value) == (f'{str(path)!r}: {data_bytes} data bytes do '
                              'not match the header shape (3, 28, 28)')


def test_image_and_label_counts_that_differ(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / 'train-images-idx3-ubyte',
              rng.integers(0, 256, (5, 28, 28)), IDX_IMAGES_MAGIC)
    write_idx(tmp_path / 'train-labels-idx1-ubyte.gz', np.arange(3),
              IDX_LABELS_MAGIC)
    for call in (lambda: load_fashion_mnist(str(tmp_path), 'train'),
                 lambda: FashionMNIST(data_root=str(tmp_path))):
        with pytest.raises(ValueError) as err:
            call()
        assert str(err.value) == (f"5 images but 3 labels in the 'train' "
                                  f'split of {str(tmp_path)!r}')


# --- FashionMNIST -----------------------------------------------------------

def _fmnist_root(root: Path, images: np.ndarray, split='test') -> Path:
    prefix = dict(train='train', test='t10k')[split]
    write_idx(root / f'{prefix}-images-idx3-ubyte', images,
              IDX_IMAGES_MAGIC)
    write_idx(root / f'{prefix}-labels-idx1-ubyte',
              (np.arange(len(images)) * 3) % 10, IDX_LABELS_MAGIC)
    return root


def test_keeps_the_folder_and_split_it_reads(tmp_path, monkeypatch):
    images = np.random.default_rng(0).integers(0, 256, (2, 28, 28))
    root = _fmnist_root(tmp_path, images, 'test')
    dataset = FashionMNIST(data_root=str(root), split='test')
    assert (dataset.data_root, dataset.split) == (str(root), 'test')
    assert dataset.image_size == 32
    # Without data_root, the folder it resolved ($FQZOO_FASHION_MNIST).
    monkeypatch.setenv(ROOT_ENV, str(root))
    dataset = FashionMNIST(split='test', image_size=28)
    assert (dataset.data_root, dataset.split) == (str(root), 'test')
    np.testing.assert_array_equal(
        dataset[1]['inputs'][0].numpy(),
        images[1].astype(np.float32) / 127.5 - 1)


@pytest.mark.parametrize('size', [28, 32, 24])
def test_inputs_are_float32(tmp_path, size):
    images = np.random.default_rng(2).integers(0, 256, (2, 28, 28))
    dataset = FashionMNIST(data_root=str(_fmnist_root(tmp_path, images)),
                           split='test', image_size=size)
    inputs = dataset[0]['inputs']
    assert inputs.dtype == torch.float32
    assert inputs.shape == (3, size, size)


@pytest.mark.parametrize('size', [8, 12, 24])
def test_inputs_stay_within_minus_one_and_one(tmp_path, size):
    """A black left half and a white right half: shrunk with antialiasing
    (weights that sum to 1 only up to rounding) their flat parts must still
    be exactly -1 and +1, and nothing beyond."""
    image = np.zeros((28, 28), np.uint8)
    image[:, 14:] = 255
    dataset = FashionMNIST(
        data_root=str(_fmnist_root(tmp_path, image[None])), split='test',
        image_size=size)
    inputs = dataset[0]['inputs']
    assert inputs.min().item() == -1.0 and inputs.max().item() == 1.0
    quarter = size // 4
    assert torch.all(inputs[:, :, :quarter] == -1)
    assert torch.all(inputs[:, :, -quarter:] == 1)


def test_non_square_idx_images_come_out_image_size_square(tmp_path):
    """``image_size`` is the side of the returned images: a stand-in IDX
    file of 28-row, 20-column images is resized to ``28 x 28`` too (its
    first side already equals ``image_size``), and so is a file of 20-row,
    28-column images, by the same bilinear resize as square images."""
    images = np.random.default_rng(3).integers(0, 256, (2, 28, 20))
    dataset = FashionMNIST(data_root=str(_fmnist_root(tmp_path, images)),
                           split='test', image_size=28)
    inputs = dataset[1]['inputs']
    assert inputs.shape == (3, 28, 28)
    # only the height differs from image_size: resized all the same
    (tmp_path / 'tall').mkdir()
    dataset = FashionMNIST(data_root=str(_fmnist_root(
        tmp_path / 'tall', images.transpose(0, 2, 1))), split='test',
        image_size=28)
    assert dataset[1]['inputs'].shape == (3, 28, 28)
    # Constant rows stay constant when only the width is stretched.
    flat = np.full((1, 28, 20), 51)
    flat[0, 7] = 204
    (tmp_path / 'flat').mkdir()
    dataset = FashionMNIST(
        data_root=str(_fmnist_root(tmp_path / 'flat', flat)), split='test',
        image_size=28)
    row = dataset[0]['inputs'][0]
    assert torch.allclose(row[0], torch.full((28,), 51 / 127.5 - 1))
    assert torch.allclose(row[7], torch.full((28,), 204 / 127.5 - 1))


def test_fashion_mnist_requires_its_folder(tmp_path, monkeypatch):
    """The folder given, else ``$FQZOO_FASHION_MNIST``, else the Debian
    package's; the source is the one the missing-folder error gives."""
    args = dict(data_root=None, split='train', image_size=32)
    [req] = FashionMNIST.external_requirements(
        dict(args, data_root='data/fmnist'))
    assert (req.what, req.arg, req.path) == (
        'Fashion-MNIST IDX files (FashionMNIST)', 'data_root', 'data/fmnist')
    monkeypatch.setenv(ROOT_ENV, str(tmp_path / 'env_root'))
    [req] = FashionMNIST.external_requirements(args)
    assert req.path == str(tmp_path / 'env_root')
    monkeypatch.delenv(ROOT_ENV)
    [req] = FashionMNIST.external_requirements(args)
    assert (req.arg, req.path) == ('data_root', DEBIAN_ROOT)
    assert req.filename is None and req.cache is None
    for text in ('apt-get install dataset-fashion-mnist',
                 'https://github.com/zalandoresearch/fashion-mnist',
                 f'${ROOT_ENV}', 'data_root='):
        assert text in req.source
    with pytest.raises(FileNotFoundError) as err:
        FashionMNIST(data_root=str(tmp_path / 'nowhere'))
    assert str(err.value).endswith(f': {req.source}')
