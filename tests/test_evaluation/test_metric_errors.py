"""Every metric's error paths end in a message naming the culprit (the
metric, the field, the sample or the shapes), not a bare traceback from
deep inside torch or numpy, or a silently wrong number."""
import pytest
import torch

from fqzoo.evaluation import (
    FID,
    PSNR,
    SSIM,
    CodebookUsage,
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
    rng = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=rng) * 2 - 1


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


def _codes(*shape, high=8, dtype=torch.long):
    return torch.randint(high, shape, generator=torch.Generator()
                         .manual_seed(0)).to(dtype)


@pytest.mark.parametrize('indices,message', [
    (_codes(2, 3, 3).index_fill(1, torch.tensor([1]), 8),
     r'data sample 1 has indices in \[0, 8\], outside \[0, 8\) for '
     'codebook_size 8'),
    (_codes(2, 3, 3) - 1,
     r'data sample 1 has indices in \[-1, \d\], outside \[0, 8\)'),
    (_codes(3, 3), r'data sample 1 indices must be an integer \[G, h, w\] '
     r'tensor, got torch.int64 \(3, 3\)'),
    (_codes(2, 3, 3, dtype=torch.float32),
     'data sample 1 indices must be an integer .* got torch.float32'),
])
def test_codebook_usage_bad_indices(indices, message):
    """An index equal to codebook_size used to be counted as code 0 of the
    next sub-codebook, without a word."""
    good = dict(indices=_codes(2, 3, 3), codebook_size=8)
    with pytest.raises(ValueError, match=f'CodebookUsage: {message}'):
        CodebookUsage().process(None, [good, dict(indices=indices,
                                                  codebook_size=8)])


def test_codebook_usage_missing_field_and_no_samples():
    with pytest.raises(KeyError, match=r"CodebookUsage: data sample 0 has "
                       r"no 'codebook_size' field \(it has \['indices'\]\)"):
        CodebookUsage().process(None, [dict(indices=_codes(1, 2, 2))])
    with pytest.raises(ValueError, match='CodebookUsage has no results'):
        CodebookUsage().evaluate(0)


def test_codebook_usage_samples_of_another_codebook():
    metric = CodebookUsage()
    metric.process(None, [dict(indices=_codes(2, 3, 3), codebook_size=8)] * 2)
    with pytest.raises(ValueError, match=r'data sample 0 has \(G, '
                       r'codebook_size\) = \(2, 16\), the earlier samples '
                       r'\(2, 8\)'):
        metric.process(None, [dict(indices=_codes(2, 3, 3), codebook_size=16)])
    with pytest.raises(ValueError, match=r'= \(1, 8\), the earlier samples '
                       r'\(2, 8\)'):
        metric.process(None, [dict(indices=_codes(1, 3, 3), codebook_size=8)])
