"""Every metric's error paths end in a message naming the culprit (the
metric, the field, the sample or the shapes), not a bare traceback from
deep inside torch or numpy, or a silently wrong number."""
import pytest
import torch

from fqzoo.evaluation import (
    FID,
    PSNR,
    SSIM,
    OfflineFID,
    PerceptualDistance,
    TokenNLL,
    psnr,
    ssim,
)


@pytest.fixture(scope='module')
def image_metrics():
    """One of each metric that reads ``inputs`` and ``recon``."""
    return {'PSNR': PSNR(), 'SSIM': SSIM(),
            'PerceptualDistance': PerceptualDistance(),
            'OfflineFID': OfflineFID()}


def _samples(recon, inputs):
    return [dict(recon=r, inputs=i) for r, i in zip(recon, inputs)]


def _images(*shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=gen) * 2 - 1


NAMES = ['PSNR', 'SSIM', 'PerceptualDistance', 'OfflineFID']


@pytest.mark.parametrize('name', NAMES)
def test_recon_and_inputs_of_different_shapes(image_metrics, name):
    samples = _samples(_images(2, 3, 16, 16), _images(2, 3, 32, 32))
    with pytest.raises(ValueError, match=rf'{name}: recon has shape '
                       r'\(3, 16, 16\) but inputs \(3, 32, 32\)'):
        image_metrics[name].process(None, samples)


@pytest.mark.parametrize('name', NAMES)
def test_images_outside_minus_one_one(image_metrics, name):
    """[0, 255] images would be clamped to white without a word."""
    inputs = _images(2, 3, 16, 16)
    recon = (inputs + 1) * 127.5
    with pytest.raises(ValueError, match=rf'{name}: recon must be images in '
                       r'\[-1, 1\], got values in \[0\S*, 2\d\d\S*\]'):
        image_metrics[name].process(None, _samples(recon, inputs))


@pytest.mark.parametrize('name', NAMES)
def test_integer_images(image_metrics, name):
    inputs = torch.zeros(2, 3, 16, 16, dtype=torch.uint8)
    with pytest.raises(ValueError, match=rf'{name}: recon must be float '
                       r'\[C, H, W\] images per sample, got torch.uint8'):
        image_metrics[name].process(None, _samples(inputs, inputs))


@pytest.mark.parametrize('name', NAMES)
def test_missing_field_and_ragged_batch(image_metrics, name):
    images = _images(2, 3, 16, 16)
    with pytest.raises(KeyError, match=r"data sample 1 has no 'recon' field "
                       r"\(it has \['inputs', 'recons'\]\)"):
        image_metrics[name].process(None, [
            dict(inputs=images[0], recon=images[0]),
            dict(inputs=images[1], recons=images[1])])
    ragged = [dict(inputs=images[0], recon=images[0]),
              dict(inputs=images[1, :, :8], recon=images[1, :, :8])]
    with pytest.raises(ValueError, match=r"the samples' '(recon|inputs)' "
                       r'tensors differ in shape: \[\(3, 8, 16\), '
                       r'\(3, 16, 16\)\]'):
        image_metrics[name].process(None, ragged)


@pytest.mark.parametrize('name', NAMES)
def test_evaluate_without_samples(image_metrics, name):
    with pytest.raises(ValueError, match=f'{name} has no results to compute'):
        image_metrics[name].evaluate(0)


def test_inception_fid_without_samples():
    """FID needs Inception weights to be built; its compute step alone is
    checked on an instance built without them."""
    metric = FID.__new__(FID)
    with pytest.raises(ValueError, match='FID has no results to compute'):
        metric.compute_metrics([])


def test_pixel_functions_check_their_inputs():
    a = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match=r'psnr: pred and target must be '
                       r'\[B, C, H, W\] of the same shape, got '
                       r'\(2, 3, 16, 16\) and \(1, 3, 16, 16\)'):
        psnr(a, a[:1])  # would broadcast silently
    with pytest.raises(ValueError, match=r'ssim: pred and target must be'):
        ssim(a[0], a[0])
    with pytest.raises(ValueError, match=r'ssim: images of 8x16 pixels are '
                       r'smaller than the 11x11 window'):
        ssim(a[:, :, :8], a[:, :, :8])


def test_ssim_metric_on_too_small_images():
    small = _images(1, 3, 8, 8)
    with pytest.raises(ValueError, match='smaller than the 11x11 window'):
        SSIM().process(None, _samples(small, small))


def test_token_nll_errors():
    metric = TokenNLL()
    with pytest.raises(ValueError, match='TokenNLL has no results'):
        metric.evaluate(0)
    with pytest.raises(KeyError, match=r"TokenNLL: data sample 1 has no "
                       r"'nll' field \(it has \['loss'\]\)"):
        metric.process(None, [dict(nll=[1.0]), dict(loss=2.0)])
    metric = TokenNLL()
    metric.process(None, [dict(nll=[1.0, 2.0]), dict(nll=[1.0])])
    with pytest.raises(ValueError, match=r'same number \(>= 1\) of sub-token '
                       r'NLLs, got \[1, 2\]'):
        metric.evaluate(2)
    metric = TokenNLL()
    metric.process(None, [dict(nll=[])])
    with pytest.raises(ValueError, match=r'got \[0\]'):
        metric.evaluate(1)
