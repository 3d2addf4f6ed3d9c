import pytest
import torch
import torch.nn.functional as F
from skimage import data

from fqzoo.models.backbones import (
    build_efficientnet_lite0,
    efficientnet_lite0_normalize,
    efficientnet_lite0_stage_features,
)

EGYPTIAN_CAT = 285


@pytest.fixture(scope='module')
def model():
    return build_efficientnet_lite0()


def test_chelsea_is_an_egyptian_cat(model):
    image = torch.from_numpy(data.chelsea()).permute(2, 0, 1)[None].float()
    image = F.interpolate(image / 127.5 - 1, size=(224, 224), mode='bilinear',
                          antialias=True, align_corners=False)
    with torch.no_grad():
        logits = model(efficientnet_lite0_normalize(image))
    assert logits.argmax(1).item() == EGYPTIAN_CAT
    assert logits.softmax(1)[0, EGYPTIAN_CAT] > 0.5


def test_normalize_uses_timm_config():
    # timm: mean = std = 0.5 on [0, 1] images, the identity on [-1, 1].
    images = torch.rand(1, 3, 4, 4) * 2 - 1
    torch.testing.assert_close(efficientnet_lite0_normalize(images), images)


def photo(size):
    """skimage's coffee and chelsea photos at ``size`` px, in [-1, 1]."""
    images = [torch.from_numpy(img[:300, :400].copy()).permute(2, 0, 1)
              for img in (data.coffee(), data.chelsea())]
    images = torch.stack(images).float() / 127.5 - 1
    return F.interpolate(images, size=(size, size), mode='bilinear',
                         antialias=True, align_corners=False)


def test_stage_features_equal_timm_modules_run_directly(model):
    """The five stages are the outputs of timm's stem and blocks 0, 1, 2, 4
    and 6 (strides 2 to 32), run here one by one on the photos mapped to
    [0, 1] and normalised by timm's mean = std = 0.5 by hand."""
    images = photo(64)
    x = ((images + 1) / 2 - 0.5) / 0.5
    expected = []
    with torch.no_grad():
        h = model.bn1(model.conv_stem(x))
        for i, block in enumerate(model.blocks):
            h = block(h)
            if i in (0, 1, 2, 4, 6):
                expected.append(h)
        feats = efficientnet_lite0_stage_features(model, images)
        last_two = efficientnet_lite0_stage_features(model, images, 2)
    assert [tuple(f.shape[1:]) for f in feats] == [
        (16, 32, 32), (24, 16, 16), (40, 8, 8), (112, 4, 4), (320, 2, 2)]
    assert len(feats) == 5 and len(last_two) == 2
    for got, want in zip(feats + last_two, expected + expected[-2:]):
        torch.testing.assert_close(got, want)
    # two different photos give different deep features
    assert (feats[-1][0] - feats[-1][1]).abs().mean() > 0.1


def test_checkpoint_in_timm_key_names(model, tmp_path):
    path = tmp_path / 'lite0.pth'
    torch.save(model.state_dict(), path)
    loaded = build_efficientnet_lite0(checkpoint=str(path))
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)


def test_checkpoint_of_another_model_fails(tmp_path):
    state_dict = build_efficientnet_lite0(pretrained=False).state_dict()
    renamed = {f'x.{key}': value for key, value in state_dict.items()}
    renamed['x.conv_stem.weight'] = torch.zeros(8, 3, 3, 3)
    path = tmp_path / 'other.pth'
    torch.save(renamed, path)
    with pytest.raises(ValueError, match='does not match'):
        build_efficientnet_lite0(checkpoint=str(path))
