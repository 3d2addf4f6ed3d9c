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


IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
OPENAI_CLIP = ((0.48145466, 0.4578275, 0.40821073),
               (0.26862954, 0.26130258, 0.27577711))


def preprocess_by_hand(images, size, interpolation, mean_std):
    """[-1, 1] -> [0, 1], resized (nearest: source pixel
    ``floor(i * in / out)``), normalised by the model's published mean/std."""
    x = (images + 1) / 2
    if interpolation == 'nearest':
        src = torch.arange(size) * images.shape[-1] // size
        x = x[..., src, :][..., src]
    else:
        x = torch.nn.functional.interpolate(
            x, size=(size, size), mode=interpolation, align_corners=False)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in mean_std)
    return (x - mean) / std


def smooth_images(n=2, size=64):
    """Random images with structure at several scales (not constant)."""
    rng = torch.Generator().manual_seed(0)
    coarse = torch.rand(n, 3, size // 8, size // 8, generator=rng)
    fine = torch.rand(n, 3, size, size, generator=rng)
    return (torch.nn.functional.interpolate(coarse, size=(size, size),
                                            mode='bilinear') * 0.7
            + 0.3 * fine) * 2 - 1


@torch.no_grad()
def excite(module):
    """Weights of fan-in scale and LayerScale 1 (timm's 0.02 init and
    DINOv2's LayerScale 1e-5 leave a random ViT's class token almost blind
    to the image)."""
    for name, param in module.named_parameters():
        if param.dim() >= 2:
            param.normal_(0, param[0].numel() ** -0.5)
        elif name.endswith('.gamma'):
            param.fill_(1.0)


@pytest.mark.parametrize('interpolation', ['nearest', 'bicubic'])
def test_dinov2_feature_is_timm_vit_normed_class_token(interpolation):
    """The teacher's feature against timm's ViT run block by block on the
    images preprocessed by hand: patch embedding, class token, positional
    embedding, the blocks, the final norm, token 0."""
    torch.manual_seed(0)
    teacher = DINOv2Teacher(pretrained=False, img_size=56,
                            interpolation=interpolation)
    excite(teacher)
    images = smooth_images()
    vit = teacher.model
    x = preprocess_by_hand(images, 56, interpolation, IMAGENET)
    with torch.no_grad():
        tokens = vit.patch_embed(x)
        tokens = torch.cat([vit.cls_token.expand(len(x), -1, -1), tokens],
                           dim=1) + vit.pos_embed
        for block in vit.blocks:
            tokens = block(tokens)
        expected = vit.norm(tokens)[:, 0]
    feat = teacher(images)
    torch.testing.assert_close(feat, expected)
    assert (feat[0] - feat[1]).abs().mean() > 0.1


def test_clip_cls_feature_is_the_pre_norm_class_token():
    """'cls' is open_clip's class token after the last block, before
    ln_post: the visual tower run part by part on the images preprocessed
    by hand (nearest resize, OpenAI CLIP mean/std)."""
    torch.manual_seed(0)
    teacher = CLIPTeacher('ViT-S-32', pretrained=False, img_size=64,
                          interpolation='nearest')
    excite(teacher)
    images = smooth_images(size=96)
    visual = teacher.visual
    x = preprocess_by_hand(images, 64, 'nearest', OPENAI_CLIP)
    with torch.no_grad():
        patches = visual.conv1(x).flatten(2).transpose(1, 2)
        cls = visual.class_embedding.expand(len(x), 1, -1)
        tokens = torch.cat([cls, patches], dim=1) + \
            visual.positional_embedding
        expected = visual.transformer(visual.ln_pre(tokens))[:, 0]
    feat = teacher(images)
    torch.testing.assert_close(feat, expected)
    assert (feat[0] - feat[1]).abs().mean() > 0.1
