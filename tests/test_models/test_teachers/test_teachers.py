import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from fqzoo.models.teachers import (
    CLIPTeacher,
    DINOv2Teacher,
    EfficientNetTeacher,
    MissingWeightsError,
)
from fqzoo.registry import TEACHERS


def assert_frozen(teacher):
    teacher.train()
    assert not teacher.training
    assert all(not m.training for m in teacher.modules())
    assert not any(p.requires_grad for p in teacher.parameters())


def test_dinov2_shapes_frozen_and_local_checkpoint(tmp_path):
    teacher = TEACHERS.build(dict(type='DINOv2Teacher', pretrained=False,
                                  img_size=56))
    assert teacher.embed_dim == 384
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    feat = teacher(x)
    assert feat.shape == (2, 384) and not feat.requires_grad
    assert_frozen(teacher)
    path = tmp_path / 'dinov2_vits14.safetensors'
    save_file(teacher.model.state_dict(), str(path))
    loaded = DINOv2Teacher(checkpoint=str(path), img_size=56)
    assert torch.allclose(loaded(x), feat, atol=1e-5)


def test_clip_cls_and_embed_features_and_local_checkpoint(tmp_path):
    teacher = CLIPTeacher('ViT-S-32', pretrained=False, img_size=64)
    assert teacher.embed_dim == 384
    x = torch.rand(2, 3, 48, 48) * 2 - 1
    feat = teacher(x)
    assert feat.shape == (2, 384)
    assert_frozen(teacher)
    # 'cls' is the pre-LayerNorm class token: the embedding applies ln_post
    # and the projection to it.
    embed = CLIPTeacher('ViT-S-32', pretrained=False, img_size=64,
                        feature='embed')
    embed.visual.load_state_dict(teacher.visual.state_dict())
    expected = embed.visual.ln_post(feat) @ embed.visual.proj
    assert torch.allclose(embed(x), expected, atol=1e-4)
    # A full-model open_clip state dict loads through checkpoint=.
    path = tmp_path / 'open_clip_pytorch_model.bin'
    torch.save({f'visual.{k}': v for k, v in
                teacher.visual.state_dict().items()} | {'logit_scale':
                                                        torch.ones(())}, path)
    loaded = CLIPTeacher('ViT-S-32', checkpoint=str(path), img_size=64)
    assert torch.allclose(loaded(x), feat, atol=1e-5)


def test_failed_download_names_the_weights(monkeypatch):
    import open_clip
    import timm

    def offline(*args, **kwargs):
        if kwargs.get('pretrained') not in (None, False):
            raise OSError('Name or service not known')
        return create(*args, **kwargs)

    create = timm.create_model
    monkeypatch.setattr(timm, 'create_model', offline)
    with pytest.raises(MissingWeightsError,
                       match='vit_small_patch14_dinov2.*checkpoint='):
        DINOv2Teacher()
    create = open_clip.create_model
    monkeypatch.setattr(open_clip, 'create_model', offline)
    with pytest.raises(MissingWeightsError,
                       match='ViT-L-14.*openai.*vit_large_patch14_clip'):
        CLIPTeacher()


def test_efficientnet_teacher_real_weights_classify_chelsea():
    skimage_data = pytest.importorskip('skimage.data')
    teacher = EfficientNetTeacher()
    assert teacher.embed_dim == 1280
    img = torch.from_numpy(np.ascontiguousarray(skimage_data.chelsea()))
    img = img.permute(2, 0, 1)[None].float() / 127.5 - 1
    feat = teacher(img)
    assert feat.shape == (1, 1280)
    logits = teacher.model.get_classifier()(feat)
    assert logits.argmax(1).item() == 285  # Egyptian cat
    assert_frozen(teacher)
