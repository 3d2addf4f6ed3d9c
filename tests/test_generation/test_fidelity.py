"""gFID / IS / precision-recall through torch-fidelity, checked with the
offline EfficientNet extractor (the Inception weights are not here)."""
import numpy as np
import pytest
import torch
from torch_fidelity.utils import create_feature_extractor

from fqzoo.evaluation.metrics.feature_extractors import EFFNET_EXTRACTOR
from fqzoo.evaluation.metrics.fid import frechet_distance
from fqzoo.generation.fidelity import (
    fidelity_metrics,
    inception_metrics,
    offline_fid,
)


def _images(num: int, seed: int) -> np.ndarray:
    """Smooth random uint8 [num, 32, 32, 3] images."""
    rng = torch.Generator().manual_seed(seed)
    coarse = torch.rand(num, 3, 4, 4, generator=rng)
    images = torch.nn.functional.interpolate(coarse, size=32, mode='bilinear')
    return (images * 255).round().byte().permute(0, 2, 3, 1).numpy()


def test_identical_sets():
    images = _images(10, 0)
    out = fidelity_metrics(images, images, feature_extractor=EFFNET_EXTRACTOR,
                           fid=True, prc=True)
    assert abs(out['frechet_inception_distance']) < 1e-2
    assert out['precision'] == 1 and out['recall'] == 1
    # IS of one image repeated: every prediction equals the marginal
    same = np.repeat(images[:1], 6, axis=0)
    isc = fidelity_metrics(same, None, feature_extractor=EFFNET_EXTRACTOR,
                           isc=True, isc_splits=2)
    assert isc['inception_score_mean'] == pytest.approx(1, abs=1e-4)


def test_offline_fid_equals_the_distance_of_the_features():
    samples, reference = _images(10, 1), _images(12, 2)
    extractor = create_feature_extractor(EFFNET_EXTRACTOR, ['pool'],
                                         cuda=False, verbose=False)
    with torch.no_grad():
        feats = [extractor(torch.from_numpy(x).permute(0, 3, 1, 2))[0]
                 for x in (samples, reference)]
    expected = frechet_distance(*feats)
    fid = offline_fid(samples, reference)['fid_effnet_offline']
    assert fid == pytest.approx(expected, rel=1e-3)
    assert fid > 1


def test_inception_metrics_arguments(tmp_path):
    images = _images(2, 0)
    assert inception_metrics(images, images, []) == {}
    with pytest.raises(ValueError, match='unknown metrics'):
        inception_metrics(images, images, ['kid'])
    with pytest.raises(FileNotFoundError):
        inception_metrics(images, images, ['fid'],
                          inception_checkpoint=str(tmp_path / 'none.pth'))
    with pytest.raises(ValueError, match='reference'):
        fidelity_metrics(images, None, fid=True)
