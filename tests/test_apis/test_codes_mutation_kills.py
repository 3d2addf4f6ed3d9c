"""fqzoo.apis.codes and fqzoo.apis.reconstruction: the behaviours the
mutation run left unchecked (the split's loader and default scope, the
progress bar of code extraction, the config's image side, the image loader
by hand, the strips' defaults, batches and device)."""
import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TinySyntheticImages, write_tiny_config
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope
from PIL import Image
from torch import nn

import fqzoo.apis.codes as codes
import fqzoo.apis.reconstruction as reconstruction
from fqzoo.apis import init_tokenizer
from fqzoo.apis.codes import build_split_dataset, extract_codes
from fqzoo.apis.reconstruction import (
    config_resolution,
    load_image,
    reconstruct_files,
    strip_grid,
)
from fqzoo.errors import InputKeyError


# ------------------------------------------------------ build_split_dataset
def _loader(**dataset) -> dict:
    return dict(dataset=dict(type=TinySyntheticImages, **dataset))


def test_missing_or_empty_loader_is_named():
    cfg = Config(dict(test_dataloader=_loader(num_samples=3),
                      val_dataloader=None))
    for split in ('val', 'train'):
        with pytest.raises(InputKeyError) as err:
            build_split_dataset(cfg, split)
        assert err.value.args == (f'The config has no {split}_dataloader',)


def test_split_dataset_is_built_from_the_split_loader(scopes):
    cfg = Config(dict(train_dataloader=_loader(num_samples=5, seed=4),
                      test_dataloader=_loader(num_samples=3, seed=2)))
    dataset = build_split_dataset(cfg, 'test')
    assert isinstance(dataset, TinySyntheticImages)
    assert (dataset.num_samples, dataset.seed) == (3, 2)
    train = build_split_dataset(cfg, 'train')
    assert (train.num_samples, train.seed) == (5, 4)


def test_default_scope_is_fqzoo_unless_the_config_names_one(scopes):
    init_default_scope('mmengine')
    build_split_dataset(Config(dict(test_dataloader=_loader())), 'test')
    assert DefaultScope.get_current_instance().scope_name == 'fqzoo'
    build_split_dataset(Config(dict(default_scope='mmengine',
                                    test_dataloader=_loader())), 'test')
    assert DefaultScope.get_current_instance().scope_name == 'mmengine'


# ----------------------------------------------- extract_codes progress bar
class Bar:
    """mmengine's ProgressBar as a recorder: its total and updates."""
    made = []

    def __init__(self, task_num: int) -> None:
        self.total, self.updates = task_num, []
        Bar.made.append(self)

    def update(self, n: int) -> None:
        self.updates.append(n)


@pytest.fixture(scope='module')
def tokenizer(tmp_path_factory):
    folder = tmp_path_factory.mktemp('tok')
    torch.manual_seed(0)
    return init_tokenizer(write_tiny_config(folder / 'tiny.py',
                                            folder / 'w')).eval()


@pytest.fixture
def bars(monkeypatch) -> list:
    Bar.made = []
    monkeypatch.setattr(codes, 'ProgressBar', Bar)
    return Bar.made


def test_progress_bar_is_on_by_default_and_counts_samples(tokenizer, bars,
                                                          tmp_path):
    """5 samples, shards of 3, batches of 2: one bar of 5, updated by
    each batch's images (2, 1 in shard 0; 2 in shard 1)."""
    dataset = TinySyntheticImages(num_samples=5)
    extract_codes(tokenizer, dataset, tmp_path / 'c', batch_size=2,
                  shard_size=3)
    assert [(bar.total, bar.updates) for bar in bars] == [(5, [2, 1, 2])]
    extract_codes(tokenizer, dataset, tmp_path / 'off', batch_size=2,
                  shard_size=3, progress=False)
    assert len(bars) == 1


def test_progress_bar_only_on_rank_0(tokenizer, bars, tmp_path):
    """Two ranks (threads), shards of 2 of 5 samples: rank 0 encodes
    shards 0 and 2 (3 samples) and shows the only bar."""
    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=extract_codes, args=(
        tokenizer, TinySyntheticImages(num_samples=5), tmp_path / 'two'),
        kwargs=dict(shard_size=2, rank=r, world_size=2,
                    barrier=barrier.wait)) for r in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [(bar.total, bar.updates) for bar in bars] == [(3, [2, 1])]


# ------------------------------------------------------- config_resolution
def _test_dataset(**dataset) -> Config:
    return Config(dict(test_dataloader=dict(dataset=dict(type='X',
                                                         **dataset))))


def test_resolution_from_the_last_pipeline_transform_with_a_size():
    pipeline = [dict(type='Load'), dict(type='Resize', size=64),
                dict(type='CenterCrop', crop_size=48), dict(type='Pack')]
    assert config_resolution(_test_dataset(pipeline=pipeline)) == 48
    assert config_resolution(_test_dataset(pipeline=pipeline[:2])) == 64


def test_resolution_skips_pipeline_entries_that_are_not_dicts():
    pipeline = [dict(type='CenterCrop', crop_size=48), 'PackInputs']
    assert config_resolution(_test_dataset(pipeline=pipeline)) == 48


@pytest.mark.parametrize('crop, want', [
    ((48, 48), 48), ([40], 40), ([32, 32, 32], 32), ((48, 64), 20)])
def test_resolution_from_a_square_size_sequence(crop, want):
    """A sequence of one distinct side gives it; a rectangle is no side,
    so the transform before it (size 20) gives the side."""
    pipeline = [dict(type='Resize', size=20),
                dict(type='Crop', crop_size=crop)]
    got = config_resolution(_test_dataset(pipeline=pipeline))
    assert got == want and type(got) is int


# --------------------------------------------------------------- load_image
def test_load_image_by_hand_grey_stripes_clamped(tmp_path):
    """A 12x24 greyscale file of 4-px black and white stripes, side 8:
    RGB with 3 equal channels, ``x / 127.5 - 1``, resized to 8x16 by
    bicubic antialiased interpolation (its overshoot clamped to [-1, 1]),
    columns 4 to 11 kept."""
    pixels = np.tile(np.repeat(np.array([0, 255], np.uint8), 4), (12, 3))
    path = tmp_path / 'stripes.png'
    Image.fromarray(pixels, mode='L').save(path)
    x = torch.from_numpy(pixels).double()[None, None] / 127.5 - 1
    big = F.interpolate(x, size=(8, 16), mode='bicubic', antialias=True,
                        align_corners=False)[0, 0, :, 4:12]
    assert big.min() < -1.05 and big.max() > 1.05    # clamping is seen
    got = load_image(path, 8)
    assert got.shape == (3, 8, 8) and got.dtype == torch.float32
    for channel in got:
        np.testing.assert_allclose(channel.numpy(), big.clamp(-1, 1).numpy(),
                                   rtol=0, atol=1e-5)


# ---------------------------------------------------------------- strips
def test_strip_grid_defaults_scale_1_padding_2_and_takes_padding():
    left = torch.linspace(-1, 1, 2 * 3 * 4 * 4).view(2, 3, 4, 4)
    right = -left
    grid = strip_grid([left, right])
    assert grid.shape == (2 * (4 + 2) + 2, 2 * (4 + 2) + 2, 3)
    tight = strip_grid([left, right], padding=0)
    assert tight.shape == (8, 8, 3)
    for r, (row_left, row_right) in enumerate(zip(left, right)):
        for c, image in enumerate((row_left, row_right)):
            want = ((image.double() + 1) * 127.5).round().permute(1, 2, 0)
            cell = tight[4 * r:4 * r + 4, 4 * c:4 * c + 4]
            np.testing.assert_allclose(cell, want.numpy(), atol=1)
            np.testing.assert_array_equal(
                grid[2 + 6 * r:6 + 6 * r, 2 + 6 * c:6 + 6 * c], cell)


class SplitTokenizer(nn.Module):
    """Two branches, channel 0 and channels 1-2; decoding is the identity.
    Records the device and size of every batch it quantizes; on the meta
    device it returns meta tensors."""

    def __init__(self, device: str = 'cpu') -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, device=device))
        self.seen = []

    def quantize(self, images: torch.Tensor) -> SimpleNamespace:
        self.seen.append((images.device.type, len(images)))
        return SimpleNamespace(quantized=images,
                               branches=[images[:, :1], images[:, 1:]])

    def decode_quantized(self, quantized: torch.Tensor) -> torch.Tensor:
        return quantized


def _photo(path, seed: int = 0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(
        path)
    return path


def test_reconstruct_files_defaults_to_mean_ablation(tmp_path):
    """An 8x8 photo (no resize): original | reconstruction | channel 0
    with channels 1-2 replaced by their mean | channels 1-2 with channel 0
    replaced by its mean, one pixel per pixel, 2 px of white padding."""
    path = _photo(tmp_path / 'p.png')
    written = reconstruct_files(SplitTokenizer(), [path], tmp_path / 'out',
                                size=8)
    assert written == [tmp_path / 'out' / 'p.png',
                       tmp_path / 'out' / 'grid.png']
    image = torch.from_numpy(np.asarray(Image.open(path))).double().permute(
        2, 0, 1) / 127.5 - 1
    mean = image.mean(dim=(1, 2), keepdim=True).expand_as(image)
    columns = [image, image, torch.cat([image[:1], mean[1:]]),
               torch.cat([mean[:1], image[1:]])]
    strip = np.asarray(Image.open(written[0]))
    assert strip.shape == (12, 4 * 10 + 2, 3)
    for c, column in enumerate(columns):
        want = ((column + 1) * 127.5).round().permute(1, 2, 0).numpy()
        np.testing.assert_allclose(strip[2:10, 2 + 10 * c:10 + 10 * c],
                                   want, atol=1)
    np.testing.assert_array_equal(np.asarray(Image.open(written[1])), strip)


def test_images_go_to_the_tokenizer_device_in_batches_of_16(tmp_path,
                                                           monkeypatch):
    """17 paths: the tokenizer (on the meta device) gets 16 images then
    1, on its device; the strips are drawn from what it returned."""
    drawn = []

    def spy(columns, **kwargs):
        drawn.append({column.device.type for column in columns})
        return np.zeros((2, 2, 3), np.uint8)

    monkeypatch.setattr(reconstruction, 'strip_grid', spy)
    tok = SplitTokenizer('meta')
    path = _photo(tmp_path / 'p.png')
    written = reconstruct_files(tok, [path] * 17, tmp_path / 'out', size=8)
    assert tok.seen == [('meta', 16), ('meta', 1)]
    assert drawn == [{'meta'}] * 18
    assert [p.name for p in written[:2]] == ['p.png', 'p_1.png']
    assert written[-2:] == [tmp_path / 'out' / 'p_16.png',
                            tmp_path / 'out' / 'grid.png']


def test_output_folder_made_with_parents_and_reused(tmp_path):
    out = tmp_path / 'a' / 'b'
    path = _photo(tmp_path / 'p.png')
    first = reconstruct_files(SplitTokenizer(), [path], out, size=8)
    again = reconstruct_files(SplitTokenizer(), [path], out, size=8)
    assert first == again == [out / 'p.png', out / 'grid.png']
    assert sorted(p.name for p in out.iterdir()) == ['grid.png', 'p.png']


def test_renamed_duplicate_does_not_overwrite_another_strip(tmp_path):
    """Three photos whose third is renamed ``x_2``, the first's stem: each
    strip has its own file and holds its own photo."""
    (tmp_path / 'a').mkdir()
    (tmp_path / 'b').mkdir()
    paths = [_photo(tmp_path / 'a' / 'x_2.png', seed=0),
             _photo(tmp_path / 'a' / 'x.png', seed=1),
             _photo(tmp_path / 'b' / 'x.png', seed=2)]
    written = reconstruct_files(SplitTokenizer(), paths, tmp_path / 'out',
                                size=8)
    assert len(set(written)) == 4
    for path, strip in zip(paths, written):
        np.testing.assert_array_equal(
            np.asarray(Image.open(strip))[2:10, 2:10],
            np.asarray(Image.open(path)))


def test_an_image_named_grid_keeps_its_strip(tmp_path):
    paths = [_photo(tmp_path / 'grid.png', seed=0),
             _photo(tmp_path / 'y.png', seed=1)]
    written = reconstruct_files(SplitTokenizer(), paths, tmp_path / 'out',
                                size=8)
    assert len(set(written)) == 3
    np.testing.assert_array_equal(
        np.asarray(Image.open(written[0]))[2:10, 2:10],
        np.asarray(Image.open(paths[0])))
