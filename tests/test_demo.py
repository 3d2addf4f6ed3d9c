"""The demo page's functions (fqzoo/demo/core.py, fqzoo/demo/app.py),
called directly, on small random models of the shipped configs."""
import numpy as np
import pytest
import torch
from PIL import Image

from fqzoo.apis import init_generator, init_tokenizer
from fqzoo.demo import core

SHIPPED = 'configs/shipped'


@pytest.fixture(scope='module')
def fq2():
    torch.manual_seed(0)
    return init_tokenizer(f'{SHIPPED}/fmnist_fq2.py')


@pytest.fixture(scope='module')
def far():
    torch.manual_seed(0)
    gen = init_generator(f'{SHIPPED}/fmnist_far.py')
    # the output layers start at zero: give them weights so samples differ
    for param in gen.head.parameters():
        if param.dim() > 1 and not param.any():
            param.data.normal_(0, 0.5)
    return gen


def save(array: np.ndarray, path) -> str:
    Image.fromarray(array).save(path)
    return str(path)


# ---------------------------------------------------------------- inputs
def test_read_upload_reads_an_image_as_rgb(tmp_path):
    gray = np.arange(12 * 20, dtype=np.uint8).reshape(12, 20)
    image = core.read_upload(save(gray, tmp_path / 'g.png'))
    assert image.mode == 'RGB' and image.size == (20, 12)
    assert np.array_equal(np.asarray(image)[..., 1], gray)


@pytest.mark.parametrize('make, words', [
    (lambda p: p.write_text('no image here'), ['notes.png', 'not an image']),
    (lambda p: Image.new('RGB', (1, 1)).save(p, format='PNG'),
     ['notes.png', '1 x 1 pixels', 'too small', '8 x 8']),
    (lambda p: Image.new('L', (5000, 16)).save(p, format='PNG'),
     ['5000 x 16 pixels', 'too large', '4096']),
])
def test_read_upload_refuses_bad_files_with_a_sentence(tmp_path, make,
                                                       words):
    path = tmp_path / 'notes.png'
    make(path)
    with pytest.raises(core.DemoInputError) as err:
        core.read_upload(str(path))
    for word in words:
        assert word in str(err.value)


def test_read_upload_refuses_big_files_and_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(core, 'MAX_BYTES', 1024)
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    with pytest.raises(core.DemoInputError, match='up to 1,024 bytes'):
        core.read_upload(save(noise, tmp_path / 'n.png'))
    with pytest.raises(core.DemoInputError, match='No file'):
        core.read_upload(None)


def test_read_upload_refuses_a_truncated_image(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    path = tmp_path / 'cut.png'
    Image.fromarray(noise).save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(core.DemoInputError, match='could not be decoded'):
        core.read_upload(str(path))


def test_to_input_centre_square_resized():
    rng = np.random.default_rng(1)
    array = rng.integers(0, 256, (20, 40, 3), np.uint8)
    image = Image.fromarray(array)
    x = core.to_input(image, 'rgb', 16)
    expected = np.asarray(Image.fromarray(array[:, 10:30]).resize(
        (16, 16), Image.Resampling.BICUBIC), np.float32) / 127.5 - 1
    assert x.shape == (1, 3, 16, 16)
    assert torch.allclose(x[0].permute(1, 2, 0), torch.from_numpy(expected))
    gray = core.to_input(image, 'gray', 16)[0]
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[0], gray[2])
    luma = np.asarray(Image.fromarray(array[:, 10:30]).convert('L').resize(
        (16, 16), Image.Resampling.BICUBIC), np.float32) / 127.5 - 1
    assert torch.allclose(gray[0], torch.from_numpy(luma))


def test_bundled_photo_unknown_name_lists_the_photos():
    with pytest.raises(core.DemoInputError, match='astronaut'):
        core.bundled_photo('mona_lisa')


# ------------------------------------------------------------- tokenizer
def test_psnr_of_a_known_error():
    image = torch.zeros(1, 3, 8, 8)
    off = image + 2 / 127.5  # two 8-bit levels brighter
    assert core.psnr(off, image) == pytest.approx(
        10 * np.log10(255 ** 2 / 4), abs=1e-6)
    assert core.psnr(image, image) == float('inf')


def test_code_map_colours_each_token_by_its_code():
    indices = torch.tensor([[0, 1], [511, 0]])
    image = core.code_map(indices, 512, side=64)
    palette = core.code_palette(512)
    assert image.shape == (64, 64, 3)
    for (r, c), code in np.ndenumerate(indices.numpy()):
        block = image[r * 32:(r + 1) * 32, c * 32:(c + 1) * 32]
        assert (block == palette[code]).all()
    # every code its own colour; neighbouring codes far apart
    for size in (256, 512):
        colours = core.code_palette(size).astype(int)
        assert len(np.unique(colours, axis=0)) == size
        assert np.abs(colours[1:] - colours[:-1]).sum(1).min() > 150


def test_tokenize_matches_decoding_each_branch_by_hand(fq2):
    torch.manual_seed(2)
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    result = core.tokenize(fq2, image, display=64)
    indices = fq2.encode(image)
    full = core.to_rgb_array(fq2.decode(indices)[0], 2)
    assert np.abs(result.reconstruction.astype(int) - full).max() <= 1
    # branch g alone: its quantized channels kept, the other branch's
    # replaced by their mean over positions (computed here from the lookup)
    quantized = fq2.quantizer.embed_indices(indices)
    parts = quantized.chunk(2, dim=1)
    for g in range(2):
        mixed = torch.cat([p if i == g else
                           p.mean((2, 3), keepdim=True).expand_as(p)
                           for i, p in enumerate(parts)], 1)
        alone = core.to_rgb_array(fq2.decode_quantized(mixed)[0], 2)
        assert np.abs(result.branches[g].astype(int) - alone).max() <= 1
        palette = core.code_palette(256)
        assert (result.code_maps[g][::8, ::8] ==
                palette[indices[0, g].numpy()]).all()
    assert result.grid == (8, 8) and result.codebook_sizes == [256, 256]
    assert result.tokens == 128 and result.bits == pytest.approx(1024)
    expected = core.psnr(fq2.decode(indices), image)
    assert result.psnr == pytest.approx(expected)
    assert 'PSNR' in result.summary() and '128 tokens' in result.summary()


def test_tokenize_one_codebook_has_no_branch_images():
    vq = init_tokenizer(f'{SHIPPED}/fmnist_vq.py')
    result = core.tokenize(vq, torch.zeros(1, 3, 32, 32))
    assert result.branches == [] and len(result.code_maps) == 1
    assert result.tokens == 64


# ------------------------------------------------------------- generator
def test_sample_is_seeded_per_sample_and_reports_progress(far, fq2):
    calls = []
    settings = core.SampleSettings(class_index=3, num=3, cfg_scale=2.0,
                                   top_k=50, top_p=0.9, seed=5)
    images = core.sample(far, fq2, settings, lambda d, n: calls.append((d, n)))
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
    assert calls == [(i, 64) for i in range(1, 65)]
    again = core.sample(far, fq2, settings)
    assert np.array_equal(images, again)
    # sample i is drawn with seed + i, whatever the batch (the decoder's
    # float sums differ with the batch size: a level at most)
    alone = core.sample(far, fq2, core.SampleSettings(
        class_index=3, num=1, cfg_scale=2.0, top_k=50, top_p=0.9, seed=6))
    assert np.abs(images[1].astype(int) - alone[0]).max() <= 1
    assert not np.array_equal(images[0], images[1])


def test_sample_hook_is_removed_after_an_error(far, fq2):
    with pytest.raises(core.DemoInputError):
        core.sample(far, fq2, core.SampleSettings(class_index=0, top_p=0))
    assert not far.backbone._forward_hooks


@pytest.mark.parametrize('field, value, words', [
    ('class_index', 10, 'class'), ('num', 0, 'number of samples'),
    ('num', core.MAX_SAMPLES + 1, 'number of samples'),
    ('cfg_scale', -1, 'CFG'), ('temperature', -0.1, 'temperature'),
    ('top_k', -1, 'top-k'), ('top_p', 0.0, 'top-p'), ('top_p', 1.5, 'top-p'),
    ('seed', -1, 'seed')])
def test_settings_out_of_range(field, value, words):
    settings = core.SampleSettings(class_index=0)
    setattr(settings, field, value)
    with pytest.raises(core.DemoInputError, match=words):
        settings.check()


def test_settings_reproduce_names_every_setting():
    text = core.SampleSettings(class_index=4, num=2, cfg_scale=2.5,
                               temperature=0.9, top_k=7, top_p=0.8,
                               seed=11).reproduce('g', 't')
    for part in ["get_model('g')", "get_model('t')", 'torch.full((2,), 4)',
                 'cfg_scale=2.5', 'temperature=0.9', 'top_k=7', 'top_p=0.8',
                 'rngs_for(range(11, 13))']:
        assert part in text


def test_tile_places_images_in_rows():
    images = [np.full((2, 3, 3), v, np.uint8) for v in (10, 20, 30)]
    grid = core.tile(images, columns=2, scale=2, pad=1)
    assert grid.shape == (2 * (4 + 1) + 1, 2 * (6 + 1) + 1, 3)
    assert (grid[1:5, 1:7] == 10).all() and (grid[1:5, 8:14] == 20).all()
    assert (grid[6:10, 1:7] == 30).all() and (grid[6:10, 8:14] == 255).all()


# ------------------------------------------------- the page's callbacks
@pytest.fixture
def page(monkeypatch, fq2, far):
    """fqzoo.demo.app with the random models in place of the shipped."""
    pytest.importorskip('gradio', reason='the demo extra is not installed '
                        '(make demo installs it)')
    from fqzoo.demo import app
    models = {'fqzoo-fmnist-fq2': fq2, 'fqzoo-fmnist-far': far,
              'fqzoo-fmnist-vq': init_tokenizer(f'{SHIPPED}/fmnist_vq.py'),
              'fqzoo-fmnist-ar': init_generator(f'{SHIPPED}/fmnist_ar.py')}
    monkeypatch.setattr(core, 'shipped_model', models.__getitem__)
    return app


def test_run_tokenizer_shows_a_message_for_a_bad_upload(page, tmp_path):
    bad = tmp_path / 'report.txt'
    bad.write_text('plain text')
    name = 'Fashion-MNIST FQ-2 (2 x 256 codes)'
    out = page.run_tokenizer(name, 'astronaut', str(bad))
    assert out[0].startswith('**Cannot use this input.**')
    assert 'report.txt is not an image' in out[0]
    assert 'Traceback' not in out[0] and out[1:] == [None] * 6


def test_run_tokenizer_turns_an_unexpected_error_into_a_message(
        page, monkeypatch):
    def broken(*_):
        raise RuntimeError('decoder exploded')

    monkeypatch.setattr(core, 'tokenize', broken)
    out = page.run_tokenizer('Fashion-MNIST VQ (512 codes)', 'coffee', None)
    assert out[0].startswith('**Something went wrong** (RuntimeError: '
                             'decoder exploded)')


def test_run_tokenizer_outputs(page):
    out = page.run_tokenizer('Fashion-MNIST FQ-2 (2 x 256 codes)', 'coffee',
                             None)
    assert 'on coffee: PSNR' in out[0]
    images = [o.value for o in out[1:]]
    assert all(v is not None for v in images)
    # lossless: the page shows the pixels its PSNR is of
    assert all(o.format == 'png' for o in out[1:])
    vq = page.run_tokenizer('Fashion-MNIST VQ (512 codes)', 'coffee', None)
    visible = [o.visible for o in vq[3:]]
    assert visible == [False, False, True, False]


def test_run_generation_outputs_and_settings(page):
    ticks = []
    out = page.run_generation('Dress', 2, 2.0, 1.0, 0, 1.0, 3,
                              progress=lambda f, desc: ticks.append(f))
    far_grid, ar_grid, text = out
    assert far_grid.shape == ar_grid.shape and far_grid.ndim == 3
    assert 'Class 3 (Dress), 2 samples, CFG scale 2' in text
    assert 'seeds 3-4' in text and "get_model('fqzoo-fmnist-far')" in text
    assert ticks[0] == (1, 128) and ticks[-1] == (128, 128)
    bad = page.run_generation('Dress', 2, 2.0, 1.0, -3, 1.0, 3,
                              progress=lambda *a, **k: None)
    assert bad[:2] == [None, None] and 'top-k must be >= 0' in bad[2]
