"""fqzoo.evaluation.whole_photo against references computed another way
(scikit-image's PSNR, PIL's ImageOps.fit, per-tile loops)."""
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from fqzoo.datasets.photo_patches import load_photo
from fqzoo.evaluation.whole_photo import (
    fidelity,
    square_photo,
    tiled,
    whole_photo_fidelity,
)

skimage_metrics = pytest.importorskip('skimage.metrics')


def levels(image: torch.Tensor) -> np.ndarray:
    return ((image.clamp(-1, 1) + 1) * 127.5).round().byte().permute(
        1, 2, 0).numpy()


def test_square_photo_is_the_centre_square_resized():
    ref = ImageOps.fit(Image.fromarray(load_photo('coffee')), (64, 64),
                       method=Image.Resampling.BICUBIC)
    ours = levels(square_photo('coffee', 64))
    assert ours.shape == (64, 64, 3)
    # ImageOps.fit may place the crop half a pixel elsewhere: compare means
    diff = np.abs(ours.astype(int) - np.asarray(ref).astype(int))
    assert diff.mean() < 1.0 and np.median(diff) == 0


def test_fidelity_matches_skimage_psnr_and_mean_colour():
    rng = torch.Generator().manual_seed(0)
    original = torch.rand(3, 16, 16, generator=rng) * 2 - 1
    recon = (original + 0.1 * torch.randn(3, 16, 16, generator=rng))
    recon[1] += 0.2                     # a green cast of about 25 levels
    scores = fidelity(recon, original)
    a, b = levels(recon), levels(original)
    assert scores['psnr'] == pytest.approx(
        skimage_metrics.peak_signal_noise_ratio(b, a, data_range=255),
        abs=1e-9)
    shift = np.abs(a.reshape(-1, 3).astype(float).mean(0)
                   - b.reshape(-1, 3).astype(float).mean(0))
    assert scores['colour_shift'] == pytest.approx(shift.max(), abs=1e-9)
    assert shift.argmax() == 1 and 15 < shift.max() < 30


def test_tiled_applies_the_function_to_each_tile_alone():
    images = torch.randn(2, 3, 12, 8)
    torch.testing.assert_close(tiled(lambda t: t, images, 4), images)
    out = tiled(lambda t: t.mean((2, 3), keepdim=True).expand_as(t),
                images, 4)
    for b in range(2):
        for i in range(0, 12, 4):
            for j in range(0, 8, 4):
                tile = images[b, :, i:i + 4, j:j + 4]
                torch.testing.assert_close(
                    out[b, :, i:i + 4, j:j + 4],
                    tile.mean((1, 2), keepdim=True).expand_as(tile))
    with pytest.raises(ValueError, match='12x8.*tile size 5'):
        tiled(lambda t: t, images, 5)


class ColourCastTokenizer(torch.nn.Module):
    """Encodes to the image itself; decodes with a red cast, plus a 16 px
    block pattern that tiling at 16 px would remove."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))

    def encode(self, images):
        return images

    def decode(self, codes):
        out = codes.clone()
        out[:, 0] += 20 / 127.5
        if codes.shape[-1] > 16:      # only whole images get the stripes
            out[..., ::2, :] += 0.1
        return out


def test_whole_photo_fidelity_scores_whole_and_tiled():
    model = ColourCastTokenizer().train()
    images = {}
    scores = whole_photo_fidelity(model, ('coffee', 'grace_hopper'),
                                  size=32, tile=16, images=images)
    assert model.training                      # mode restored
    for mode in ('whole', 'tiled'):
        per_photo = []
        for name in ('coffee', 'grace_hopper'):
            original = square_photo(name, 32)
            recon = ColourCastTokenizer().decode(original[None] if mode == 'whole'
                                                 else original[None, :, :16, :16])
            if mode == 'tiled':
                recon = original.clone()[None]
                recon[:, 0] += 20 / 127.5
            a, b = levels(recon[0]), levels(original)
            ref = skimage_metrics.peak_signal_noise_ratio(b, a, data_range=255)
            assert scores[f'{mode}/{name}/psnr'] == pytest.approx(ref)
            per_photo.append(ref)
        assert scores[f'{mode}/psnr'] == pytest.approx(np.mean(per_photo))
    assert scores['tiled/psnr'] > scores['whole/psnr']
    # the red cast is at most 20 levels (less where red clips at 255)
    assert 10 < scores['tiled/coffee/colour_shift'] <= 20
    assert [len(images[k]) for k in ('original', 'whole', 'tiled')] == [2] * 3
