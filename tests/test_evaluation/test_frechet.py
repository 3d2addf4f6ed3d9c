"""frechet_distance against the textbook formula with scipy.linalg.sqrtm, on
both of its branches: eigenvalues of ``S1 S2`` when both sets have at least
D samples, the nuclear norm of ``X1 X2^T`` when one has fewer."""
import numpy as np
import pytest
import scipy.linalg
import torch

from fqzoo.evaluation.metrics.fid import frechet_distance


def _reference(features1, features2):
    """``|mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrtm(S1 S2))``, unbiased
    covariances (zero for a single sample)."""
    x1, x2 = features1.double().numpy(), features2.double().numpy()
    dim = x1.shape[1]

    def cov(x):
        return np.cov(x, rowvar=False) if len(x) > 1 else np.zeros((dim, dim))

    s1, s2 = cov(x1), cov(x2)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    diff = x1.mean(0) - x2.mean(0)
    return float(diff @ diff + np.trace(s1) + np.trace(s2)
                 - 2 * np.trace(covmean).real)


def _features(n, dim, seed, shift=0.0):
    rng = torch.Generator().manual_seed(seed)
    mix = torch.randn(dim, dim, generator=rng, dtype=torch.float64)
    return torch.randn(n, dim, generator=rng, dtype=torch.float64) @ mix \
        + shift


@pytest.mark.parametrize('n1,n2,dim', [
    (60, 45, 6),   # both >= D: eigenvalue branch
    (6, 6, 6),     # exactly D on both sides: eigenvalue branch
    (7, 9, 12),    # both < D: nuclear-norm branch
    (30, 5, 12),   # one side < D: nuclear-norm branch
    (5, 30, 12),
])
def test_matches_scipy_sqrtm(n1, n2, dim):
    a, b = _features(n1, dim, 0), _features(n2, dim, 1, shift=0.7)
    assert frechet_distance(a, b) == pytest.approx(_reference(a, b),
                                                   rel=1e-7)


@pytest.mark.parametrize('n', [20, 3])
def test_one_sample_counts_as_zero_covariance(n):
    """A single sample: ``|x - mu2|^2 + tr(S2)`` whatever the branch."""
    one, many = _features(1, 4, 2), _features(n, 4, 3)
    want = float(((one[0] - many.mean(0)) ** 2).sum()
                 + torch.cov(many.T).trace())
    assert frechet_distance(one, many) == pytest.approx(want, rel=1e-10)
    assert frechet_distance(many, one) == pytest.approx(want, rel=1e-10)


def test_identical_sets_are_at_distance_zero_on_both_branches():
    for n, dim in ((50, 5), (4, 10)):
        feats = _features(n, dim, 4)
        assert abs(frechet_distance(feats, feats.clone())) < 1e-8


@pytest.mark.parametrize('features1,features2,message', [
    (torch.randn(5, 3), torch.randn(5, 4),
     'features1 has 3 features per sample, features2 has 4'),
    (torch.randn(0, 3), torch.randn(5, 3), 'features1 has no samples'),
    (torch.randn(5, 3), torch.randn(5), r'features2 must be \[N, D\], got '
     r'shape \(5,\)'),
    (torch.randn(5, 3), torch.tensor([[0.0, 1, 2]] * 2 + [[0, float('nan'),
                                                            2]]),
     'features2 holds NaN or Inf \\(sample 2 first\\)'),
])
def test_bad_features_are_named(features1, features2, message):
    with pytest.raises(ValueError, match=message):
        frechet_distance(features1, features2)
