"""FashionMNISTReconFidelity: the Fashion-MNIST classifier judging
reconstructions, against the classifier and Fréchet distance run directly.

The images are the test session's garment drawings (conftest's
``garment_root``), read through the dataset as real ones are: the tests run
without the Fashion-MNIST package."""
import pytest
import torch
from scipy import linalg

from fqzoo.datasets import FashionMNIST
from fqzoo.evaluation.fmnist_classifier import load_fmnist_classifier, predict
from fqzoo.evaluation.metrics import FashionMNISTReconFidelity
from fqzoo.registry import METRICS


@pytest.fixture(scope='module')
def images(garment_root):
    """40 garment drawings as the dataset gives them, [3, 32, 32] in
    [-1, 1]."""
    dataset = FashionMNIST(data_root=str(garment_root), split='test')
    return torch.stack([dataset[i]['inputs'] for i in range(40)])


def _evaluate(metric, inputs, recon, batch=16):
    for start in range(0, len(inputs), batch):
        metric.process(None, [dict(inputs=a, recon=b) for a, b in
                              zip(inputs[start:start + batch],
                                  recon[start:start + batch])])
    return metric.compute_metrics(metric.results)


def _scipy_frechet(a, b):
    a, b = a.double().numpy(), b.double().numpy()
    s1, s2 = torch.from_numpy(a).T.cov().numpy(), torch.from_numpy(b).T.cov().numpy()
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + s1.trace() + s2.trace()
                 - 2 * covmean.trace())


def test_perfect_reconstructions_agree_and_have_zero_distance(images):
    metric = METRICS.build(dict(type='FashionMNISTReconFidelity'))
    out = _evaluate(metric, images, images.clone())
    assert out['fmnist_recon_agreement'] == 1.0
    assert out['fid_fmnist_recon'] == pytest.approx(0.0, abs=1e-3)


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")
def test_degraded_reconstructions_match_the_classifier_run_directly(images):
    """Flipped and blurred recons: the agreement is the fraction of equal
    argmaxes of the classifier, the distance scipy's on its features, and
    neither depends on how the samples were batched."""
    recon = torch.nn.functional.avg_pool2d(images.flip(-2), 3, 1, 1)
    model = load_fmnist_classifier()
    logits_in, feats_in = predict(model, images)
    logits_rec, feats_rec = predict(model, recon)
    expected_agree = (logits_in.argmax(1) == logits_rec.argmax(1)).float().mean()

    out = _evaluate(FashionMNISTReconFidelity(), images, recon, batch=16)
    out7 = _evaluate(FashionMNISTReconFidelity(), images, recon, batch=7)
    assert out['fmnist_recon_agreement'] == pytest.approx(float(expected_agree))
    assert out['fmnist_recon_agreement'] < 0.9        # upside-down clothes
    assert out['fid_fmnist_recon'] == pytest.approx(
        _scipy_frechet(feats_in, feats_rec), rel=1e-3)
    assert out['fid_fmnist_recon'] > 1.0
    assert out7 == pytest.approx(out)


def test_bad_inputs_name_the_metric(images):
    metric = FashionMNISTReconFidelity()
    with pytest.raises(ValueError, match='FashionMNISTReconFidelity.*shape'):
        metric.process(None, [dict(inputs=images[0], recon=images[0, :, :16])])
    with pytest.raises(ValueError, match='FashionMNISTReconFidelity has no'):
        metric.compute_metrics([])
    with pytest.raises(FileNotFoundError, match='classifier weights not found'):
        FashionMNISTReconFidelity(checkpoint='/nonexistent/weights.pt')
