"""tools/reconstruct.py and fqzoo.apis.reconstruction: strips with one
decode per sub-codebook branch, for any quantizer."""
import numpy as np
import pytest
import torch
from conftest import REPO, run_tool, write_tiny_config
from mmengine.config import Config
from PIL import Image

from fqzoo.apis import init_tokenizer
from fqzoo.apis.reconstruction import (
    branch_reconstructions,
    config_resolution,
    load_image,
    reconstruct_files,
)

FQ_CONFIG = '''_base_ = ['./tiny_vq.py']
model = dict(quantizer=dict(_delete_=True, type='FactorizedQuantizer',
                            num_codebooks=2,
                            quantizer=dict(type='VectorQuantizer',
                                           codebook_size=16, embed_dim=4)))
'''


@pytest.fixture
def configs(tmp_path) -> dict:
    vq = write_tiny_config(tmp_path / 'tiny_vq.py', tmp_path / 'w')
    fq = tmp_path / 'tiny_fq.py'
    fq.write_text(FQ_CONFIG)
    return dict(vq=vq, fq=fq)


def _photos(tmp_path, sizes=((40, 30), (24, 24))) -> list:
    paths = []
    for i, (w, h) in enumerate(sizes):
        image = torch.randint(0, 256, (h, w, 3), dtype=torch.uint8).numpy()
        path = tmp_path / f'photo{i}.{"png" if i % 2 else "jpg"}'
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


def levels(images: torch.Tensor, scale: int) -> np.ndarray:
    """``[B, 3, H, W]`` in [-1, 1] as the uint8 ``[B, sH, sW, 3]`` a PNG
    holds, upscaled ``scale`` times by repeating pixels (float64 here)."""
    array = ((images.double().clamp(-1, 1) + 1) * 127.5).round().numpy()
    array = array.repeat(scale, 2).repeat(scale, 3)
    return array.transpose(0, 2, 3, 1).astype(np.uint8)


def tiles(png: np.ndarray, rows: int, cols: int, side: int,
          pad: int = 2) -> np.ndarray:
    """The ``[rows, cols, side, side, 3]`` cells of a grid PNG with
    ``pad`` px of padding around every cell, after checking the padding
    is white."""
    assert png.shape == (rows * (side + pad) + pad,
                         cols * (side + pad) + pad, 3)
    starts = [pad + i * (side + pad) for i in range(max(rows, cols))]
    mask = np.ones(png.shape[:2], bool)
    for y in starts[:rows]:
        for x in starts[:cols]:
            mask[y:y + side, x:x + side] = False
    assert (png[mask] == 255).all()
    return np.stack([np.stack([png[y:y + side, x:x + side]
                               for x in starts[:cols]])
                     for y in starts[:rows]])


def by_hand(tokenizer, images: torch.Tensor, ablate: str) -> list:
    """original, reconstruction and each branch decoded alone, the other
    branch replaced by its spatial mean or zeros, with tensor ops."""
    with torch.no_grad():
        recon = tokenizer.reconstruct(images)
        out = tokenizer.quantize(images)
        first, second = out.branches
        if ablate == 'mean':
            stand_in = [b.mean((2, 3), keepdim=True).expand_as(b)
                        for b in (first, second)]
        else:
            stand_in = [torch.zeros_like(first), torch.zeros_like(second)]
        alone = [tokenizer.decode_quantized(torch.cat([first, stand_in[1]],
                                                      1)),
                 tokenizer.decode_quantized(torch.cat([stand_in[0], second],
                                                      1))]
    return [images, recon] + alone


def assert_cells(png_cells: np.ndarray, columns: list, scale: int) -> None:
    """Each PNG cell equals its column's image to the rounding of uint8."""
    for c, column in enumerate(columns):
        want = levels(column, scale).astype(int)
        got = png_cells[:, c].astype(int)
        assert np.abs(got - want).max() <= 1, c


@pytest.mark.slow
def test_reconstruct_tool_writes_strips_per_branch(configs, tmp_path):
    torch.manual_seed(0)
    checkpoint = tmp_path / 'fq.pth'
    torch.save(dict(state_dict=init_tokenizer(configs['fq']).state_dict()),
               checkpoint)
    paths = _photos(tmp_path)
    out = tmp_path / 'recon'
    run_tool(['tools/reconstruct.py', str(configs['fq']), str(checkpoint),
              *map(str, paths), '--out', str(out), '--size', '16',
              '--scale', '2', '--ablate', 'zero'])
    # original | reconstruction | branch 0 | branch 1, 32 px + 2 px padding;
    # the cells by value: the checkpoint's decodes computed here
    tok = init_tokenizer(configs['fq'], checkpoint)
    images = torch.stack([load_image(p, 16) for p in paths])
    columns = by_hand(tok, images, 'zero')
    strips = []
    for i, path in enumerate(paths):
        strip = tiles(np.asarray(Image.open(out / f'{path.stem}.png')), 1, 4,
                      32)
        assert_cells(strip, [c[i:i + 1] for c in columns], 2)
        strips.append(strip[0])
    grid = tiles(np.asarray(Image.open(out / 'grid.png')), 2, 4, 32)
    np.testing.assert_array_equal(grid, np.stack(strips))


def test_branch_reconstructions(configs):
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    fq = init_tokenizer(configs['fq'])
    full, *branches = branch_reconstructions(fq, images, 'mean')
    assert len(branches) == 2
    for ablate in ('mean', 'zero'):
        for got, want in zip(branch_reconstructions(fq, images, ablate),
                             by_hand(fq, images, ablate)[1:]):
            torch.testing.assert_close(got, want)
    assert not torch.allclose(branches[0], branches[1])
    vq = init_tokenizer(configs['vq'])
    assert len(branch_reconstructions(vq, images)) == 1
    with pytest.raises(ValueError, match='ablate'):
        branch_reconstructions(fq, images, 'noise')


def test_load_image_equals_pil_bicubic_and_centre_crop(tmp_path):
    """Shorter side to 16 (PIL bicubic, longer side truncated as
    torchvision does), centre crop by slicing, ``x / 127.5 - 1``: equal to
    PIL's uint8 rounding; exact when no resize is needed."""
    rng = np.random.default_rng(0)
    for (height, width), resized, (top, left) in (
            ((30, 40), (21, 16), (0, 2)), ((50, 36), (16, 22), (3, 0)),
            ((16, 20), (20, 16), (0, 2))):
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        path = tmp_path / f'{height}x{width}.png'
        Image.fromarray(pixels).save(path)
        ref = np.asarray(Image.fromarray(pixels).resize(
            resized, Image.Resampling.BICUBIC))[top:top + 16, left:left + 16]
        ref = ref.transpose(2, 0, 1) / 127.5 - 1
        got = load_image(path, 16).numpy()
        tolerance = 1e-5 if resized == (width, height) else 1 / 127.5
        np.testing.assert_allclose(got, ref, rtol=0, atol=tolerance)


@pytest.mark.parametrize('ablate', ['mean', 'zero'])
def test_strips_and_grid_hold_the_decodes_by_value(configs, tmp_path,
                                                   ablate):
    """Two 16x20 photos (centre 16 columns kept, no resize): each strip's
    cells are the photo's pixels, the reconstruction and each branch alone
    (the other replaced by hand), upscaled twice; grid row r is strip r."""
    torch.manual_seed(0)
    fq = init_tokenizer(configs['fq']).eval()
    paths = _photos(tmp_path, sizes=((20, 16), (20, 16)))
    written = reconstruct_files(fq, paths, tmp_path / 'out', size=16,
                                ablate=ablate, scale=2, batch_size=1)
    pixels = [np.asarray(Image.open(p).convert('RGB')) for p in paths]
    images = torch.from_numpy(np.stack(pixels)[:, :, 2:18].transpose(
        0, 3, 1, 2) / 127.5 - 1).float()
    columns = by_hand(fq, images, ablate)
    strips = [tiles(np.asarray(Image.open(p)), 1, 4, 32) for p in written[:2]]
    for i, strip in enumerate(strips):
        assert_cells(strip, [c[i:i + 1] for c in columns], 2)
        np.testing.assert_array_equal(
            strip[0, 0], levels(images[i:i + 1], 2)[0])  # the photo itself
    grid = tiles(np.asarray(Image.open(written[-1])), 2, 4, 32)
    np.testing.assert_array_equal(grid, np.concatenate(strips))


def test_one_branch_strip_and_duplicate_names(configs, tmp_path):
    vq = init_tokenizer(configs['vq'])
    path = _photos(tmp_path, sizes=((20, 20),))[0]
    written = reconstruct_files(vq, [path, path], tmp_path / 'out', size=16)
    assert [p.name for p in written] == ['photo0.png', 'photo0_1.png',
                                         'grid.png']
    assert Image.open(written[0]).size == (2 * 18 + 2, 20)


def test_config_resolution():
    for name, size in [('ablation/fq2.py', 32), ('fq/fqgan_dual_ds16.py', 256)]:
        assert config_resolution(Config.fromfile(REPO / 'configs' / name)) == \
            size
    assert config_resolution(Config(dict(model=dict()))) is None
