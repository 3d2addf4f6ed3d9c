"""fqzoo/demo/core.py pinned where the mutation run found it unchecked:
the page's exact sentences, the limits at their boundaries, the helpers'
defaults and the arguments :func:`core.sample` passes on (with a stand-in
generator and tokenizer, so no model is built)."""
import numpy as np
import pytest
import torch
from PIL import Image

from fqzoo.demo import core


def save(array: np.ndarray, path) -> str:
    Image.fromarray(array).save(path)
    return str(path)


# ---------------------------------------------------------------- inputs
def test_read_upload_no_file_sentence():
    with pytest.raises(core.DemoInputError) as err:
        core.read_upload(None)
    assert str(err.value) == ('No file was uploaded: choose an image file '
                              '(PNG, JPEG, ...) or pick a bundled photo.')


def test_read_upload_not_an_image_sentence(tmp_path):
    path = tmp_path / 'notes.png'
    path.write_text('no image here')
    with pytest.raises(core.DemoInputError) as err:
        core.read_upload(path)
    assert str(err.value) == ('notes.png is not an image the demo can read '
                              '(PNG, JPEG, BMP, GIF, WebP, TIFF ...).')


def test_read_upload_damaged_image_sentence(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    path = tmp_path / 'cut.png'
    Image.fromarray(noise).save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(core.DemoInputError) as err:
        core.read_upload(path)
    assert str(err.value) == ('cut.png could not be decoded (a damaged or '
                              'truncated image file?).')


def test_read_upload_takes_exactly_max_bytes_and_names_the_size_over_it(
        tmp_path):
    # sparse files: 20 MB on paper, nothing on disk; zeros are no image
    path = tmp_path / 'big.png'
    with open(path, 'wb') as file:
        file.truncate(20 * 2 ** 20)
    with pytest.raises(core.DemoInputError, match='is not an image'):
        core.read_upload(path)
    with open(path, 'wb') as file:
        file.truncate(20 * 2 ** 20 + 1)
    with pytest.raises(core.DemoInputError) as err:
        core.read_upload(path)
    assert str(err.value) == (
        'big.png is 20,971,521 bytes (20.0 MB); the demo takes files up to '
        '20,971,520 bytes (20 MB).')


def test_read_upload_size_in_mb_has_one_decimal(tmp_path, monkeypatch):
    monkeypatch.setattr(core, 'MAX_BYTES', 1024)
    path = tmp_path / 'mid.png'
    with open(path, 'wb') as file:
        file.truncate(3 * 2 ** 19)  # 1.5 MiB
    with pytest.raises(core.DemoInputError) as err:
        core.read_upload(path)
    assert str(err.value) == (
        'mid.png is 1,572,864 bytes (1.5 MB); the demo takes files up to 1,024 '
        'bytes (0.000976562 MB).')


@pytest.mark.parametrize('width, height', [(8, 20), (20, 8), (4096, 8)])
def test_read_upload_takes_the_side_limits_themselves(tmp_path, width,
                                                      height):
    array = np.full((height, width), 7, np.uint8)
    image = core.read_upload(save(array, tmp_path / 'edge.png'))
    assert image.size == (width, height) and image.mode == 'RGB'
    assert (np.asarray(image) == 7).all()


def test_bundled_photo_unknown_name_lists_every_photo_comma_separated():
    with pytest.raises(core.DemoInputError) as err:
        core.bundled_photo('mona_lisa')
    assert str(err.value) == (
        "No bundled photo 'mona_lisa'; choose one of astronaut, chelsea, "
        'coffee, rocket, hubble_deep_field, immunohistochemistry, retina, '
        'stereo_motorcycle, china, flower, grace_hopper.')


@pytest.mark.parametrize('height, width, rows, cols', [
    (20, 27, slice(0, 20), slice(3, 23)),
    (27, 20, slice(3, 23), slice(0, 20)),
    (24, 20, slice(2, 22), slice(0, 20))])
def test_to_input_crops_the_centre_square_rounding_down(height, width, rows,
                                                        cols):
    array = np.random.default_rng(3).integers(0, 256, (height, width, 3),
                                              np.uint8)
    x = core.to_input(Image.fromarray(array), 'rgb', 20)
    expected = array[rows, cols].transpose(2, 0, 1) / 127.5 - 1
    assert x.shape == (1, 3, 20, 20)
    assert torch.allclose(x[0], torch.from_numpy(expected).float(),
                          atol=1e-6)


def test_to_input_is_float32_whatever_the_default_dtype():
    image = Image.fromarray(np.full((8, 8, 3), 255, np.uint8))
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        x = core.to_input(image, 'rgb', 8)
    finally:
        torch.set_default_dtype(previous)
    assert x.dtype == torch.float32 and (x == 1).all()


# ------------------------------------------------------------- tokenizer
# [3, 1, 2]: pixel (0, 0) is (-1, 0, -0.5), pixel (0, 1) is (1, 0.5, 1.5)
SMALL = torch.tensor([[[-1.0, 1.0]], [[0.0, 0.5]], [[-0.5, 1.5]]])
SMALL_UINT8 = np.array([[[0, 128, 64], [255, 191, 255]]], np.uint8)


def test_to_rgb_array_default_scale_is_one():
    array = core.to_rgb_array(SMALL)
    assert array.dtype == np.uint8 and np.array_equal(array, SMALL_UINT8)


@pytest.mark.parametrize('scale', [2, 3])
def test_to_rgb_array_scales_each_pixel_to_a_square(scale):
    array = core.to_rgb_array(SMALL, scale)
    assert array.shape == (scale, 2 * scale, 3)
    assert (array[:, :scale] == SMALL_UINT8[0, 0]).all()
    assert (array[:, scale:] == SMALL_UINT8[0, 1]).all()
    assert array.flags['C_CONTIGUOUS']


def test_code_map_scale_follows_the_width_of_a_wide_map():
    indices = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
    image = core.code_map(indices, 8, side=8)
    palette = core.code_palette(8)
    assert image.shape == (4, 8, 3)  # 8 // 4 = 2 pixels a token
    assert (image[2:4, 6:8] == palette[7]).all()
    assert (image[0:2, 0:2] == palette[0]).all()


def test_code_map_narrower_side_than_tokens_keeps_one_pixel_a_token():
    indices = torch.tensor([[0, 1], [2, 3]])
    image = core.code_map(indices, 4, side=1)
    assert np.array_equal(image, core.code_palette(4)[indices.numpy()])


def test_summary_names_grid_codebooks_tokens_bits_and_time():
    result = core.TokenizerResult(
        original=None, reconstruction=None, branches=[], code_maps=[],
        psnr=31.234, grid=(2, 3), codebook_sizes=[4, 8], seconds=0.5)
    # 2 x 3 positions x 2 codebooks = 12 tokens; 6 x (2 + 3) = 30 bits
    assert result.summary() == (
        'PSNR 31.23 dB | 2 x 3 positions x 2 sub-codebook(s) (4 x 8 codes) '
        '= 12 tokens per image, 30 bits | 0.50 s')


# ------------------------------------------------------------- generator
@pytest.mark.parametrize('field, value, message', [
    ('class_index', -1, 'class must be one of 0-9'),
    ('class_index', 10, 'class must be one of 0-9'),
    ('num', 0, 'number of samples must be 1-16'),
    ('num', 17, 'number of samples must be 1-16'),
    ('cfg_scale', -0.5, 'CFG scale must be >= 0'),
    ('temperature', -0.1, 'temperature must be >= 0'),
    ('top_k', -1, 'top-k must be >= 0 (0 keeps every code)'),
    ('top_p', 0.0, 'top-p must be in (0, 1]'),
    ('top_p', 1.5, 'top-p must be in (0, 1]'),
    ('seed', -1, 'seed must be >= 0')])
def test_settings_refusal_sentences(field, value, message):
    settings = core.SampleSettings(class_index=0)
    setattr(settings, field, value)
    with pytest.raises(core.DemoInputError) as err:
        settings.check()
    assert str(err.value) == message


@pytest.mark.parametrize('changes', [
    {}, dict(class_index=9), dict(num=1), dict(num=16), dict(cfg_scale=0.0),
    dict(temperature=0.0), dict(top_k=0), dict(top_p=1.0), dict(top_p=0.01),
    dict(seed=0), dict(class_index=0, num=1, cfg_scale=0.0, temperature=0.0,
                       top_k=0, top_p=1.0, seed=0)])
def test_settings_limits_themselves_are_accepted(changes):
    settings = core.SampleSettings(class_index=0, seed=3, top_k=5)
    for name, value in changes.items():
        setattr(settings, name, value)
    assert settings.check() is settings


def test_settings_reproduce_text_in_full():
    text = core.SampleSettings(class_index=4, num=2, cfg_scale=2.5,
                               temperature=0.9, top_k=7, top_p=0.8,
                               seed=11).reproduce('g', 't')
    assert text.split('\n') == [
        'import torch',
        'from fqzoo.apis import get_model',
        'from fqzoo.models.generators.sampling import rngs_for',
        "gen, tok = get_model('g'), get_model('t')",
        'labels = torch.full((2,), 4)',
        'idx = gen.generate(labels, cfg_scale=2.5, temperature=0.9, '
        'top_k=7, top_p=0.8, rng=rngs_for(range(11, 13)))',
        'images = tok.decode(idx)  # [-1, 1], NCHW']


class StandInGenerator:
    """Records what :func:`core.sample` passes; runs its backbone
    ``forwards`` times as if drawing positions."""

    def __init__(self, grid_size, forwards):
        self.grid_size = grid_size
        self.backbone = torch.nn.Identity()
        self.forwards = forwards
        self.kwargs = None

    def generate(self, labels, *, cfg_scale, temperature, top_k, top_p, rng):
        self.kwargs = dict(labels=labels, cfg_scale=cfg_scale,
                           temperature=temperature, top_k=top_k, top_p=top_p,
                           seeds=[g.initial_seed() for g in rng])
        for _ in range(self.forwards):
            self.backbone(torch.zeros(1))
        return torch.zeros(len(labels), 1, 1, dtype=torch.long)


class StandInTokenizer:
    """Decodes to fixed images whose 8-bit levels are ``levels``."""

    def __init__(self, levels: np.ndarray):
        self.levels = levels

    def decode(self, idx):
        images = torch.from_numpy(self.levels.transpose(0, 3, 1, 2).copy())
        return images.float() / 127.5 - 1


def test_sample_passes_every_setting_and_returns_nhwc_levels():
    levels = np.random.default_rng(4).integers(0, 256, (3, 2, 5, 3),
                                               np.uint8)
    generator = StandInGenerator((2, 3), forwards=7)
    calls = []
    settings = core.SampleSettings(class_index=4, num=3, cfg_scale=2.5,
                                   temperature=0.7, top_k=9, top_p=0.6,
                                   seed=5)
    images = core.sample(generator, StandInTokenizer(levels), settings,
                         lambda done, total: calls.append((done, total)))
    assert images.dtype == np.uint8 and np.array_equal(images, levels)
    labels = generator.kwargs.pop('labels')
    assert torch.equal(labels, torch.tensor([4, 4, 4]))
    assert generator.kwargs == dict(cfg_scale=2.5, temperature=0.7, top_k=9,
                                    top_p=0.6, seeds=[5, 6, 7])
    # 2 x 3 positions; a forward past the last one still reports 6 of 6
    assert calls == [(1, 6), (2, 6), (3, 6), (4, 6), (5, 6), (6, 6), (6, 6)]
    assert not generator.backbone._forward_hooks


def test_tile_defaults_four_columns_three_times_two_pixel_gaps():
    colours = [10, 20, 30, 40, 50]
    images = [np.full((1, 1, 3), c, np.uint8) for c in colours]
    grid = core.tile(images)
    expected = np.full((12, 22, 3), 255, np.uint8)
    for colour, (top, left) in zip(colours, [(2, 2), (2, 7), (2, 12),
                                             (2, 17), (7, 2)]):
        expected[top:top + 3, left:left + 3] = colour
    assert grid.dtype == np.uint8 and np.array_equal(grid, expected)


def test_tile_of_one_image_is_that_image_framed():
    image = np.array([[[1, 2, 3], [4, 5, 6]]], np.uint8)  # 1 x 2
    grid = core.tile([image], scale=1, pad=1)
    expected = np.full((3, 4, 3), 255, np.uint8)
    expected[1, 1:3] = image[0]
    assert grid.dtype == np.uint8 and np.array_equal(grid, expected)
