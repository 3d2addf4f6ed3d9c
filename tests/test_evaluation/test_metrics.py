import math
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torch_fidelity.feature_extractor_inceptionv3 as tf_inception
from mmengine.evaluator import Evaluator
from skimage.metrics import structural_similarity

from fqzoo.evaluation import FID, PSNR, SSIM, CodebookUsage, OfflineFID
from fqzoo.evaluation.metrics.fid import frechet_distance
from fqzoo.registry import METRICS


def _images(batch, size=32, seed=0):
    rng = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=rng) * 2 - 1


def _noisy(images, std, seed=1):
    rng = torch.Generator().manual_seed(seed)
    return (images + std * torch.randn(images.shape, generator=rng)).clamp(-1, 1)


def _samples(inputs, recon, codebook_size=8, indices=None):
    if indices is None:
        indices = torch.zeros(len(inputs), 1, 2, 2, dtype=torch.long)
    return [dict(inputs=x, recon=y, indices=i, codebook_size=codebook_size)
            for x, y, i in zip(inputs, recon, indices)]


def _evaluate(metric, batches):
    size = 0
    for inputs, recon in batches:
        metric.process(None, _samples(inputs, recon))
        size += len(inputs)
    return metric.evaluate(size)


@pytest.fixture(scope='module')
def offline_fid():
    return OfflineFID()


def test_build_from_registry():
    for name in ('PSNR', 'SSIM', 'CodebookUsage'):
        assert type(METRICS.build(dict(type=name))).__name__ == name


def test_psnr_by_hand():
    inputs = torch.zeros(2, 3, 4, 4)  # 0.5 in [0, 1]
    recon = inputs.clone()
    recon[0] += 0.2  # error 0.1 in [0, 1] everywhere: 20 dB
    recon[1, 0, 0, 0] = 1.0  # one pixel off by 0.5 of 48: mse 0.25 / 48
    expected = (20 + 10 * math.log10(48 / 0.25)) / 2
    result = _evaluate(PSNR(), [(inputs[:1], recon[:1]),
                                (inputs[1:], recon[1:])])
    assert result['psnr'] == pytest.approx(expected)


def test_ssim_matches_skimage():
    inputs = _images(3, size=24)
    recon = _noisy(inputs, 0.2)
    expected = np.mean([structural_similarity(
        ((x + 1) / 2).permute(1, 2, 0).double().numpy(),
        ((y + 1) / 2).permute(1, 2, 0).double().numpy(),
        channel_axis=-1, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=1)
        for x, y in zip(inputs, recon)])
    result = _evaluate(SSIM(), [(inputs, recon)])
    assert result['ssim'] == pytest.approx(expected, abs=1e-7)


def test_codebook_usage_by_hand():
    # Codebook of 4, two sub-codebooks. Sub-codebook 0 uses codes {0, 1}
    # equally: usage 1/2, perplexity 2. Sub-codebook 1 uses code 3 only:
    # usage 1/4, perplexity 1.
    first = torch.tensor([[[0, 1]], [[3, 3]]])
    second = torch.tensor([[[1, 0]], [[3, 3]]])
    metric = CodebookUsage()
    for indices in (first, second):
        metric.process(None, [dict(inputs=None, recon=None, indices=indices,
                                   codebook_size=4)])
    result = metric.evaluate(2)
    assert result == pytest.approx({
        'usage_0': 0.5, 'perplexity_0': 2.0, 'usage_1': 0.25,
        'perplexity_1': 1.0, 'usage': 0.375, 'perplexity': 1.5})
    assert not any('loss' in key for key in result)


def test_codebook_usage_counts_unequal_codes_by_hand():
    """Five samples of three sub-codebooks with unequal code frequencies,
    in batches of 2, 2 and 1: usage and perplexity (exp of the entropy in
    nats) from a NumPy count of every code."""
    rng = np.random.default_rng(0)
    weights = [[.5, .2, .2, .1, 0, 0], [.05, .05, .1, .1, .3, .4],
               [0, 0, 0, 0, 0, 1]]
    indices = np.stack([rng.choice(6, size=(5, 3, 3), p=w) for w in weights],
                       1)
    metric = CodebookUsage()
    for start, stop in ((0, 2), (2, 4), (4, 5)):
        metric.process(None, [dict(inputs=None, recon=None,
                                   indices=torch.from_numpy(i),
                                   codebook_size=6)
                              for i in indices[start:stop]])
    result = metric.evaluate(5)
    usages, perplexities = [], []
    for g in range(3):
        counts = np.bincount(indices[:, g].ravel(), minlength=6)
        probs = counts[counts > 0] / counts.sum()
        usages.append((counts > 0).mean())
        perplexities.append(math.exp(-(probs * np.log(probs)).sum()))
        assert result[f'usage_{g}'] == pytest.approx(usages[g])
        assert result[f'perplexity_{g}'] == pytest.approx(perplexities[g])
    assert result['usage'] == pytest.approx(np.mean(usages))
    assert result['perplexity'] == pytest.approx(np.mean(perplexities))
    # unequal frequencies: the perplexity is not the number of codes used
    assert perplexities[0] < 4 - 0.2


def test_lpips_distance_equals_the_lpips_package(tmp_path):
    """PerceptualDistance with LPIPSLoss(vgg_checkpoint=a torchvision-layout
    VGG16 file) against the ``lpips`` package run directly, its trunk made
    of that VGG16's own layers: the mean of per-sample distances over two
    batches."""
    import lpips
    import torchvision
    torch.manual_seed(0)
    features = torchvision.models.vgg16(weights=None).features.eval()
    path = tmp_path / 'vgg16.pth'
    torch.save({f'features.{k}': v for k, v in features.state_dict().items()},
               path)
    reference = lpips.LPIPS(net='vgg', pnet_rand=True, verbose=False).eval()
    for stage in (reference.net.slice1, reference.net.slice2,
                  reference.net.slice3, reference.net.slice4,
                  reference.net.slice5):
        for name, _ in list(stage.named_children()):
            setattr(stage, name, features[int(name)])
    inputs = _images(3)
    recon = _noisy(inputs, 0.3)
    with torch.no_grad():
        want = [reference(x[None], y[None]).item()
                for x, y in zip(inputs, recon)]
    metric = METRICS.build(dict(type='PerceptualDistance', loss=dict(
        type='LPIPSLoss', vgg_checkpoint=str(path))))
    got = _evaluate(metric, [(inputs[:2], recon[:2]), (inputs[2:], recon[2:])])
    assert got == {'lpips': pytest.approx(np.mean(want), rel=1e-5)}
    assert min(want) > 0


def test_perceptual_distance_defaults_to_effnet():
    metric = METRICS.build(dict(type='PerceptualDistance'))
    inputs = _images(2)
    assert _evaluate(metric, [(inputs, inputs)]) == {'effnet_perceptual': 0}
    metric = METRICS.build(dict(
        type='PerceptualDistance', name='lpips_random',
        loss=dict(type='LPIPSLoss', pretrained=False)))
    assert _evaluate(metric, [(inputs, _noisy(inputs, 0.2))])[
        'lpips_random'] > 0


def test_offline_fid(offline_fid):
    inputs = _images(6)
    same = _evaluate(offline_fid, [(inputs, inputs)])['fid_effnet_offline']
    noisy = _evaluate(offline_fid, [(inputs, _noisy(inputs, 0.3))])
    assert abs(same) < 1e-6
    assert noisy['fid_effnet_offline'] > 1
    one = _evaluate(offline_fid, [(inputs[:1], inputs[1:2])])
    assert math.isfinite(one['fid_effnet_offline'])
    # by value: the Fréchet distance (checked against scipy in
    # test_frechet.py) of the extractor's pooled features of the images
    # quantised by hand to uint8
    def pooled(images):
        levels = ((images + 1) * 127.5).round().clamp(0, 255).byte()
        with torch.no_grad():
            return offline_fid.extractor(levels)[0].double()

    noisy_images = _noisy(inputs, 0.3)
    assert noisy['fid_effnet_offline'] == pytest.approx(frechet_distance(
        pooled(inputs), pooled(noisy_images)), rel=1e-5)


def test_offline_fid_grows_with_shift(offline_fid):
    inputs = _images(6)
    small = _evaluate(offline_fid, [(inputs, (inputs + 0.1).clamp(-1, 1))])
    large = _evaluate(offline_fid, [(inputs, (inputs + 0.5).clamp(-1, 1))])
    assert small['fid_effnet_offline'] < large['fid_effnet_offline']


def test_evaluator_runs_all_metrics(offline_fid):
    evaluator = Evaluator([PSNR(), SSIM(), CodebookUsage(), offline_fid])
    inputs = _images(4)
    recon = _noisy(inputs, 0.1)
    indices = torch.randint(0, 8, (4, 2, 2, 2))
    evaluator.process(_samples(inputs[:2], recon[:2], 8, indices[:2]))
    evaluator.process(_samples(inputs[2:], recon[2:], 8, indices[2:]))
    result = evaluator.evaluate(4)
    assert {'psnr', 'ssim', 'usage', 'usage_1', 'perplexity',
            'fid_effnet_offline'} <= set(result)


def test_fid_without_weights_offline_fails_clearly(monkeypatch):
    def offline(*args, **kwargs):
        raise URLError('offline')

    monkeypatch.setattr(tf_inception, 'load_state_dict_from_url', offline)
    with pytest.raises(FileNotFoundError,
                       match='weights-inception-2015-12-05-6726825d.pth'):
        FID()


def test_fid_with_local_inception_checkpoint(tmp_path, monkeypatch):
    # A random-weights Inception state dict, saved as users save theirs.
    with monkeypatch.context() as patch:
        patch.setattr(tf_inception, 'load_state_dict_from_url',
                      lambda *args, **kwargs: None)
        patch.setattr(tf_inception.FeatureExtractorInceptionV3,
                      'load_state_dict', lambda *args, **kwargs: None)
        state_dict = tf_inception.FeatureExtractorInceptionV3(
            'inception-v3-compat', ['2048']).state_dict()
    # He-scaled convolutions, so the features still depend on the image
    # after ~90 layers (at the default scale they fade to 0 and every FID
    # is 0), and a larger last layer, so the class probabilities differ
    # between images (IS about 1.016, not 1.00002)
    torch.manual_seed(0)
    for key, value in state_dict.items():
        if key.endswith('conv.weight'):
            torch.nn.init.kaiming_normal_(value)
    state_dict['fc.weight'].mul_(300)
    path = tmp_path / 'inception.pth'
    torch.save(state_dict, path)

    def no_download(*args, **kwargs):
        raise AssertionError('tried to download')

    monkeypatch.setattr(tf_inception, 'load_state_dict_from_url', no_download)
    metric = METRICS.build(dict(type='FID', inception_checkpoint=str(path),
                                is_splits=1))
    inputs = _images(4, size=16)
    result = _evaluate(metric, [(inputs, inputs)])
    assert set(result) == {'fid_inception', 'is_inception'}
    assert abs(result['fid_inception']) < 1e-4
    # by value, on other reconstructions: the Fréchet distance of the 2048-d
    # features and exp(mean KL(p(y|x) || p(y))) of the softmaxed logits,
    # from Inception run directly on the images quantised by hand
    recon = _noisy(inputs, 0.5)
    metric = METRICS.build(dict(type='FID', inception_checkpoint=str(path),
                                is_splits=1))
    result = _evaluate(metric, [(inputs, recon)])
    extractor = metric.extractor
    with torch.no_grad():
        real, fake = (extractor(((x + 1) * 127.5).round().clamp(0, 255)
                                .byte()) for x in (inputs, recon))
    probs = fake[1].double().softmax(1)
    marginal = probs.mean(0, keepdim=True)
    kl = (probs * (probs.log() - marginal.log())).sum(1)
    assert math.log(result['is_inception']) == pytest.approx(
        kl.mean().item(), rel=1e-3)
    assert result['fid_inception'] == pytest.approx(
        frechet_distance(real[0].double(), fake[0].double()), rel=1e-5)
    assert result['fid_inception'] > 1 and result['is_inception'] > 1.01
