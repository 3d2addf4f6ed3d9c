"""Teacher and feature-prediction-head behaviour that mutation testing
showed no test pinned down (docs/testing.md lists the mutants these tests
kill).

References are worked out another way: the pre-flight requirements are
written out from the libraries' own pretrained configs (open_clip's
``hf_hub``, timm's ``hf_hub_id``) and a Hugging Face cache laid out by hand;
the head's defaults are its docstring's (the released 3 blocks, 8 heads,
1024 wide, 16x16 grid), its checkpoint layout is the shipped zoo model's, and
its output is the transformer run part by part.
"""
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from huggingface_hub import constants as hf_constants
from safetensors import safe_open
from safetensors.torch import save_file

from fqzoo.models.backbones.efficientnet_lite0 import (
    efficientnet_lite0_requirement,
)
from fqzoo.models.teachers import (
    CLIPTeacher,
    DINOv2Teacher,
    EfficientNetTeacher,
    FeaturePredictionHead,
    FrozenTeacher,
    MissingWeightsError,
    load_state_dict_file,
)
from fqzoo.models.teachers.base import download_or_fail
from fqzoo.utils.preflight import Requirement

HF = 'https://hf.example'
CLIP_REPO = 'timm/vit_base_patch16_clip_224.openai'
DINO_REPO = 'timm/vit_small_patch14_dinov2.lvd142m'
ZOO = (Path(__file__).resolve().parents[3] / 'fqzoo' / 'zoo_assets'
       / 'fqzoo-photos-fq2' / 'fqzoo-photos-fq2-af0376e8.safetensors')


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty Hugging Face cache under ``tmp_path`` and the endpoint
    ``HF``; returns the cache root."""
    root = tmp_path / 'hf'
    root.mkdir()
    monkeypatch.setattr(hf_constants, 'HF_HUB_CACHE', str(root))
    monkeypatch.setattr(hf_constants, 'ENDPOINT', HF)
    return root


def cache_file(root: Path, repo: str, filename: str) -> str:
    """Put ``filename`` of ``repo`` in the hub cache layout (refs/main
    names the snapshot); returns its path."""
    folder = root / ('models--' + repo.replace('/', '--'))
    (folder / 'refs').mkdir(parents=True, exist_ok=True)
    (folder / 'refs' / 'main').write_text('c0ffee')
    path = folder / 'snapshots' / 'c0ffee' / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b'weights')
    return str(path)


# --- download_or_fail -------------------------------------------------------


def test_failed_download_message_in_full():
    def offline():
        raise OSError('no network')

    with pytest.raises(MissingWeightsError) as info:
        download_or_fail(offline, '"net" (lib)', 'hf-hub:org/net')
    assert str(info.value) == (
        'Could not load the pretrained weights "net" (lib) (no local '
        'checkpoint= given and the download failed: no network). Download '
        'them on a machine with network access (hf-hub:org/net) and pass '
        'checkpoint=<local path> in the teacher config, or use '
        'pretrained=False for random weights in tests.')
    assert isinstance(info.value.__cause__, OSError)


# --- external_requirements ----------------------------------------------------


def clip_args(**kwargs):
    return dict(dict(model_name='ViT-B-16', pretrained_tag='openai',
                     checkpoint=None, pretrained=True), **kwargs)


def test_clip_requirement_none_without_pretrained_weights(hub):
    assert CLIPTeacher.external_requirements(
        clip_args(pretrained=False)) == []
    assert len(CLIPTeacher.external_requirements(clip_args())) == 1


def test_clip_requirement_names_the_hub_file(hub, monkeypatch):
    import open_clip

    # open_clip's table: the repository ends in '/', no file named.
    cfg = open_clip.get_pretrained_cfg('ViT-B-16', 'openai')
    assert cfg['hf_hub'] == CLIP_REPO + '/'
    [req] = CLIPTeacher.external_requirements(
        clip_args(checkpoint='/w/clip.bin'))
    assert req == Requirement(
        what='CLIP weights "ViT-B-16" / "openai" (open_clip)',
        arg='checkpoint', path='/w/clip.bin',
        source=f'{HF}/{CLIP_REPO} (open_clip_model.safetensors)',
        filename='ViT-B-16-openai.safetensors', cache=None, server=HF)
    seen = []
    monkeypatch.setattr(open_clip, 'download_pretrained',
                        lambda c: seen.append(c) or '/cache/w.safetensors')
    assert req.fetch() == '/cache/w.safetensors'
    assert seen == [cfg]


@pytest.mark.parametrize('name', ['open_clip_model.safetensors',
                                  'open_clip_pytorch_model.bin'])
def test_clip_requirement_finds_either_cached_file(hub, name):
    path = cache_file(hub, CLIP_REPO, name)
    [req] = CLIPTeacher.external_requirements(clip_args())
    assert req.cache == path
    assert req.path is None
    assert req.filename == 'ViT-B-16-openai.safetensors'


def test_clip_requirement_of_a_hub_entry_naming_its_file(hub):
    import open_clip

    cfg = open_clip.get_pretrained_cfg('ViTamin-B', 'datacomp1b')
    assert cfg['hf_hub'] == 'jienengchen/ViTamin-B/pytorch_model.bin'
    path = cache_file(hub, 'jienengchen/ViTamin-B', 'pytorch_model.bin')
    # The safetensors default is not looked for when the entry names a file.
    cache_file(hub, 'jienengchen/ViTamin-B', 'open_clip_model.safetensors')
    [req] = CLIPTeacher.external_requirements(
        clip_args(model_name='ViTamin-B', pretrained_tag='datacomp1b'))
    assert req == Requirement(
        what='CLIP weights "ViTamin-B" / "datacomp1b" (open_clip)',
        arg='checkpoint', path=None,
        source=f'{HF}/jienengchen/ViTamin-B (pytorch_model.bin)',
        filename='ViTamin-B-datacomp1b.bin', cache=path, server=HF)


def test_clip_requirement_of_a_tag_with_only_an_address(hub, monkeypatch):
    import open_clip

    url = 'https://weights.example/clip/net.pt'
    asked = []
    monkeypatch.setattr(open_clip, 'get_pretrained_cfg',
                        lambda *a: asked.append(a) or dict(url=url))
    [req] = CLIPTeacher.external_requirements(
        clip_args(model_name='Net', pretrained_tag='lab',
                  checkpoint='/w/net.pt'))
    assert asked == [('Net', 'lab')]
    assert req == Requirement(
        what='CLIP weights "Net" / "lab" (open_clip)', arg='checkpoint',
        path='/w/net.pt', source=url, server=url)
    assert req.fetch is None


def test_clip_requirement_of_an_unknown_tag(hub):
    [req] = CLIPTeacher.external_requirements(
        clip_args(pretrained_tag='nope', checkpoint='/w/x.pt'))
    assert req == Requirement(
        what='CLIP weights "ViT-B-16" / "nope" (open_clip)',
        arg='checkpoint', path='/w/x.pt',
        source='open_clip has no "nope" weights for "ViT-B-16" '
        '(open_clip.list_pretrained())', server=None)


def dino_args(**kwargs):
    return dict(dict(model_name='vit_small_patch14_dinov2', checkpoint=None,
                     pretrained=True), **kwargs)


def test_dinov2_requirement_none_without_pretrained_weights(hub):
    assert DINOv2Teacher.external_requirements(
        dino_args(pretrained=False)) == []
    assert len(DINOv2Teacher.external_requirements(dino_args())) == 1


def test_dinov2_requirement_names_the_hub_file(hub, monkeypatch):
    import timm.models._hub

    assert timm.models.get_pretrained_cfg(
        'vit_small_patch14_dinov2').hf_hub_id == DINO_REPO
    [req] = DINOv2Teacher.external_requirements(
        dino_args(checkpoint='/w/dino.pth'))
    assert req == Requirement(
        what='DINOv2 weights "vit_small_patch14_dinov2" (timm)',
        arg='checkpoint', path='/w/dino.pth',
        source=f'{HF}/{DINO_REPO} (model.safetensors)',
        filename='vit_small_patch14_dinov2.safetensors', cache=None,
        server=HF)
    seen = []
    monkeypatch.setattr(timm.models._hub, 'download_from_hf',
                        lambda *a: seen.append(a) or '/cache/m.safetensors')
    assert req.fetch() == '/cache/m.safetensors'
    assert seen == [(DINO_REPO, 'model.safetensors')]


@pytest.mark.parametrize('name', ['model.safetensors', 'pytorch_model.bin'])
def test_dinov2_requirement_finds_either_cached_file(hub, name):
    path = cache_file(hub, DINO_REPO, name)
    [req] = DINOv2Teacher.external_requirements(dino_args())
    assert req.cache == path
    assert req.path is None


def test_dinov2_requirement_of_a_model_with_only_an_address(hub,
                                                            monkeypatch):
    import timm

    url = 'https://weights.example/dino/net.pth'
    asked = []
    monkeypatch.setattr(
        timm.models, 'get_pretrained_cfg',
        lambda name: asked.append(name) or SimpleNamespace(hf_hub_id=None,
                                                           url=url))
    [req] = DINOv2Teacher.external_requirements(
        dino_args(model_name='vit_net', checkpoint='/w/net.pth'))
    assert asked == ['vit_net']
    assert req == Requirement(
        what='DINOv2 weights "vit_net" (timm)', arg='checkpoint',
        path='/w/net.pth', source=url, server=url)
    assert req.fetch is None


def test_dinov2_requirement_of_an_unknown_model(hub):
    [req] = DINOv2Teacher.external_requirements(
        dino_args(model_name='no_such_vit', checkpoint='/w/x.pth'))
    assert req == Requirement(
        what='DINOv2 weights "no_such_vit" (timm)', arg='checkpoint',
        path='/w/x.pth',
        source='timm has no pretrained weights for "no_such_vit"',
        server=None)


def test_efficientnet_requirement_is_the_given_checkpoint(tmp_path):
    args = dict(checkpoint=str(tmp_path / 'lite0.pth'), pretrained=True)
    assert EfficientNetTeacher.external_requirements(
        dict(args, pretrained=False)) == []
    [req] = EfficientNetTeacher.external_requirements(args)
    assert req.path == str(tmp_path / 'lite0.pth')
    assert req.arg == 'checkpoint'
    assert req == efficientnet_lite0_requirement(str(tmp_path / 'lite0.pth'))


# --- FeaturePredictionHead ----------------------------------------------------


def test_head_defaults_are_the_released_head():
    """Docstring defaults: 8 input channels, 1024 wide, 3 blocks of 8 heads
    with a 4x MLP, a 16x16 grid plus the class row, no output layer."""
    with torch.device('meta'):
        head = FeaturePredictionHead()
    assert head.width == 1024 and head.grid_size == 16
    assert head.proj_in.fc1.in_features == 8
    assert head.proj_in.fc2.out_features == 1024
    assert len(head.blocks) == 3
    for block in head.blocks:
        assert block.attn.num_heads == 8
        assert block.mlp.fc1.out_features == 4096
    assert head.class_embedding.shape == (1, 1024)
    assert head.positional_embedding.shape == (16 * 16 + 1, 1024)
    assert isinstance(head.proj_out, torch.nn.Identity)
    assert head.pos_interpolation == 'bicubic'


def test_head_loads_the_zoo_models_prediction_head():
    """The shipped fqzoo-photos-fq2 model's head (width 64, out_channels
    1280, 8x8 grid) loads strictly: same names, same shapes."""
    prefix = 'regularizers.1.head.'
    with safe_open(str(ZOO), 'pt') as f:
        state = {k[len(prefix):]: f.get_tensor(k) for k in f.keys()
                 if k.startswith(prefix)}
    head = FeaturePredictionHead(in_channels=8, width=64, num_layers=1,
                                 num_heads=4, grid_size=8,
                                 out_channels=1280)
    head.load_state_dict(state)
    assert head.class_embedding.shape == (1, 64)
    assert [n for n, _ in head.proj_in.named_children()] == [
        'fc1', 'act', 'fc2']
    assert isinstance(head.proj_in.act, torch.nn.ReLU)
    out = head(torch.randn(2, 8, 8, 8))
    assert out.shape == (2, 1280)


def head_by_hand(head, x):
    """The head run part by part (grid = trained grid: no resize)."""
    tokens = x.flatten(2).transpose(1, 2)
    fc1, fc2 = head.proj_in.fc1, head.proj_in.fc2
    tokens = torch.relu(tokens @ fc1.weight.T + fc1.bias) @ fc2.weight.T \
        + fc2.bias
    cls = head.class_embedding.expand(len(x), 1, -1)
    tokens = head.ln_pre(torch.cat([cls, tokens], 1)
                         + head.positional_embedding)
    for block in head.blocks:
        tokens = block(tokens)
    return head.ln_post(tokens[:, 0])


def test_head_out_channels_maps_the_class_token_linearly():
    torch.manual_seed(0)
    head = FeaturePredictionHead(in_channels=4, width=16, num_layers=1,
                                 num_heads=2, grid_size=3, out_channels=5)
    x = torch.randn(2, 4, 3, 3)
    with torch.no_grad():
        feat = head_by_hand(head, x)
        expected = feat @ head.proj_out.weight.T + head.proj_out.bias
        out = head(x)
    assert out.shape == (2, 5)
    torch.testing.assert_close(out, expected)
    plain = FeaturePredictionHead(in_channels=4, width=16, num_layers=1,
                                  num_heads=2, grid_size=3)
    assert plain.width == 16
    with torch.no_grad():
        torch.testing.assert_close(plain(x), head_by_hand(plain, x))


def test_head_mlp_ratio_sets_every_blocks_hidden_width():
    head = FeaturePredictionHead(in_channels=4, width=16, num_layers=2,
                                 num_heads=2, mlp_ratio=2.5, grid_size=2)
    assert [b.mlp.fc1.out_features for b in head.blocks] == [40, 40]


def test_head_embeddings_start_at_scale_one_over_sqrt_width():
    """Class and positional embeddings are N(0, 1/width): the median of
    |N(0, s^2)| is 0.6745 s."""
    torch.manual_seed(0)
    head = FeaturePredictionHead(in_channels=4, width=256, num_layers=1,
                                 num_heads=2, grid_size=4)
    s = 256 ** -0.5
    for param, n in [(head.class_embedding, 256),
                     (head.positional_embedding, 17 * 256)]:
        assert param.numel() == n
        median = param.detach().abs().median().item()
        assert median == pytest.approx(0.6745 * s, rel=0.15)
        assert param.detach().std().item() == pytest.approx(s, rel=0.15)


def test_head_bilinear_positional_embedding_on_another_grid():
    """pos_interpolation='bilinear' resamples the 4x4 grid rows (not the
    class row) to a 2x3 input grid: each new row a bilinear mix of the
    trained ones (half-pixel centres)."""
    torch.manual_seed(0)
    head = FeaturePredictionHead(in_channels=4, width=8, num_layers=1,
                                 num_heads=2, grid_size=4,
                                 pos_interpolation='bilinear')
    with torch.no_grad():
        head.positional_embedding.normal_(0, 3)
    pos = head.positional_embedding.detach()
    grid = pos[1:].view(4, 4, 8)

    def axis(n_out, n_in=4):
        """Bilinear weights [n_out, n_in] with clamped half-pixel
        coordinates."""
        w = torch.zeros(n_out, n_in)
        for i in range(n_out):
            src = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
            lo = min(int(src), n_in - 1)
            hi = min(lo + 1, n_in - 1)
            w[i, lo] += 1 - (src - lo)
            w[i, hi] += src - lo
        return w

    rows = torch.einsum('ha,wb,abc->hwc', axis(2), axis(3), grid)
    x = torch.randn(2, 4, 2, 3)
    with torch.no_grad():
        tokens = head.proj_in(x.flatten(2).transpose(1, 2))
        cls = head.class_embedding.expand(2, 1, 8)
        tokens = torch.cat([cls, tokens], 1) + torch.cat(
            [pos[:1], rows.reshape(6, 8)])
        expected = head.ln_post(head.blocks[0](head.ln_pre(tokens))[:, 0])
        out = head(x)
    torch.testing.assert_close(out, expected)


def test_head_under_bfloat16_autocast_sums_in_the_tokens_dtype():
    """Under CPU autocast the tokens are bfloat16; the class token and the
    positional embedding join them cast to bfloat16 (the sum is rounded
    like the tokens), then LayerNorm and the blocks run as autocast says."""
    torch.manual_seed(0)
    head = FeaturePredictionHead(in_channels=4, width=16, num_layers=1,
                                 num_heads=2, grid_size=3)
    with torch.no_grad():
        head.class_embedding.normal_(0, 1.3)
        head.positional_embedding.normal_(0, 1.3)
    x = torch.randn(2, 4, 3, 3)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        tokens = head.proj_in(x.flatten(2).transpose(1, 2))
        assert tokens.dtype == torch.bfloat16
        cls = head.class_embedding.to(torch.bfloat16).expand(2, 1, -1)
        summed = torch.cat([cls, tokens], 1) + \
            head.positional_embedding.to(torch.bfloat16)
        assert summed.dtype == torch.bfloat16
        expected = head.ln_post(head.blocks[0](head.ln_pre(summed))[:, 0])
        out = head(x)
    assert out.dtype == expected.dtype
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


# --- FrozenTeacher ----------------------------------------------------------


class MeanTeacher(FrozenTeacher):
    """The base frame around a mean-pool 'network' with one frozen
    layer."""

    MEAN = (0.5, 0.25, 0.75)
    STD = (0.5, 0.25, 2.0)

    def __init__(self, **kwargs):
        super().__init__(self.MEAN, self.STD, **kwargs)
        self.embed_dim = 3
        self.layer = torch.nn.Linear(3, 3)
        self.freeze()

    def features(self, x):
        return self.layer(x.mean((2, 3)))


def normalise_by_hand(x01):
    """[0, 1] images to (x - mean) / std channel by channel."""
    out = torch.empty_like(x01)
    for c, (m, s) in enumerate(zip(MeanTeacher.MEAN, MeanTeacher.STD)):
        out[:, c] = (x01[:, c] - m) / s
    return out


def smooth(n=2, size=16, seed=0):
    rng = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=rng)
    return torch.nn.functional.interpolate(
        coarse, size=(size, size), mode='bilinear') * 1.8 - 0.9


def test_frozen_teacher_defaults_resize_bicubic_to_224():
    teacher = MeanTeacher()
    assert (teacher.img_size, teacher.interpolation) == (224, 'bicubic')
    images = smooth()
    out = teacher.preprocess(images)
    assert out.shape == (2, 3, 224, 224)
    ref = torch.nn.functional.interpolate(
        (images + 1) / 2, size=(224, 224), mode='bicubic',
        align_corners=False)
    torch.testing.assert_close(out, normalise_by_hand(ref))


@pytest.mark.parametrize('mode', ['bilinear', 'bicubic'])
def test_frozen_teacher_resize_uses_half_pixel_centres(mode):
    """align_corners=False: halving a 4-pixel ramp 0, 1, 2, 3 (bilinear)
    gives the means of pixel pairs 0.5 and 2.5, not the corners 0 and 3."""
    teacher = MeanTeacher(img_size=2, interpolation=mode)
    ramp = torch.arange(4.).view(1, 1, 1, 4).expand(1, 3, 4, 4)
    images = ramp / 3 * 2 - 1
    out = teacher.preprocess(images)
    if mode == 'bilinear':
        expected01 = torch.tensor([0.5, 2.5]) / 3
    else:  # Keys cubic (a = -0.75) at offsets 1.5, 0.5, 0.5, 1.5, clamped
        w = torch.tensor([-0.09375, 0.59375, 0.59375, -0.09375])
        expected01 = torch.stack([
            (w * torch.tensor([0., 0., 1., 2.])).sum(),
            (w * torch.tensor([1., 2., 3., 3.])).sum()]) / 3
    expected = normalise_by_hand(expected01.view(1, 1, 1, 2)
                                 .expand(1, 3, 2, 2))
    torch.testing.assert_close(out, expected)


def test_frozen_teacher_nearest_and_no_resize():
    images = smooth(size=8)
    near = MeanTeacher(img_size=4, interpolation='nearest')
    torch.testing.assert_close(
        near.preprocess(images),
        normalise_by_hand((images[..., ::2, ::2] + 1) / 2))
    keep = MeanTeacher(img_size=None)
    torch.testing.assert_close(keep.preprocess(images),
                               normalise_by_hand((images + 1) / 2))
    same = MeanTeacher(img_size=8, interpolation='nearest')
    torch.testing.assert_close(same.preprocess(images),
                               normalise_by_hand((images + 1) / 2))
    feat = keep(images)
    assert feat.dtype == torch.float32 and not feat.requires_grad
    with torch.no_grad():
        expected = keep.layer(normalise_by_hand((images + 1) / 2)
                              .mean((2, 3)))
    torch.testing.assert_close(feat, expected)


def test_frozen_teacher_statistics_stay_out_of_the_state_dict():
    teacher = MeanTeacher()
    assert set(teacher.state_dict()) == {'layer.weight', 'layer.bias'}
    assert teacher.mean.shape == teacher.std.shape == (1, 3, 1, 1)
    assert teacher.mean.flatten().tolist() == list(MeanTeacher.MEAN)
    assert teacher.std.flatten().tolist() == list(MeanTeacher.STD)


def test_frozen_teacher_refuses_an_unknown_interpolation():
    with pytest.raises(ValueError) as info:
        MeanTeacher(interpolation='area')
    assert str(info.value) == ("interpolation must be one of ('nearest', "
                               "'bilinear', 'bicubic'), got \"area\"")


def test_frozen_teacher_stays_frozen_in_eval_mode():
    teacher = MeanTeacher()
    assert not teacher.training
    assert [p.requires_grad for p in teacher.parameters()] == [False, False]
    assert teacher.train() is teacher and not teacher.training
    assert teacher.train(True) is teacher and not teacher.layer.training


# --- load_state_dict_file -----------------------------------------------------


def test_load_state_dict_file_formats(tmp_path):
    state = {'w': torch.arange(3.), 'b': torch.ones(2)}
    save_file(state, str(tmp_path / 'net.safetensors'))
    for name, saved in [('plain.pth', state),
                        ('sd.pth', {'state_dict': state, 'epoch': 3}),
                        ('model.pth', {'model': state, 'step': 7})]:
        torch.save(saved, tmp_path / name)
    for name in ['net.safetensors', 'plain.pth', 'sd.pth', 'model.pth']:
        got = load_state_dict_file(str(tmp_path / name))
        assert set(got) == {'w', 'b'}, name
        assert torch.equal(got['w'], state['w']), name
    # 'state_dict' wins over 'model'; a non-dict entry is not unwrapped.
    torch.save({'state_dict': state, 'model': {'x': torch.zeros(1)}},
               tmp_path / 'both.pth')
    assert set(load_state_dict_file(tmp_path / 'both.pth')) == {'w', 'b'}
    flat = {'model': 'vit', 'w': torch.ones(1)}
    torch.save(flat, tmp_path / 'flat.pth')
    assert load_state_dict_file(tmp_path / 'flat.pth').keys() == flat.keys()


def test_load_state_dict_file_names_a_missing_file(tmp_path):
    path = tmp_path / 'none.pth'
    with pytest.raises(FileNotFoundError) as info:
        load_state_dict_file(str(path))
    assert str(info.value) == f'Teacher checkpoint not found: {path}'


# --- constructors -----------------------------------------------------------


class Offline(Exception):
    pass


def recorder(calls):
    """A library factory that records its call and fails like an offline
    hub."""
    def create(*args, **kwargs):
        calls.append((args, kwargs))
        raise Offline('no network')
    return create


def missing_message(weights, hint):
    return (f'Could not load the pretrained weights {weights} (no local '
            'checkpoint= given and the download failed: no network). '
            'Download them on a machine with network access '
            f'({hint}) and pass checkpoint=<local path> in the teacher '
            'config, or use pretrained=False for random weights in tests.')


def test_clip_default_downloads_openai_vit_l_14_at_224(monkeypatch):
    """Defaults: ViT-L-14 / 'openai' weights (QuickGELU) at 224 px, asked
    for with require_pretrained so a missing file is an error."""
    import open_clip

    calls = []
    monkeypatch.setattr(open_clip, 'create_model', recorder(calls))
    with pytest.raises(MissingWeightsError) as info:
        CLIPTeacher()
    assert calls == [(('ViT-L-14',), dict(
        pretrained='openai', require_pretrained=True,
        force_quick_gelu=True, force_image_size=224))]
    assert str(info.value) == missing_message(
        '"ViT-L-14" / "openai" (open_clip)',
        'hf-hub:timm/vit_large_patch14_clip_224.openai/, file '
        'open_clip_model.safetensors')
    assert isinstance(info.value.__cause__, Offline)
    calls.clear()
    with pytest.raises(MissingWeightsError):
        CLIPTeacher('ViT-B-16', 'laion2b_s34b_b88k', img_size=96)
    assert calls == [(('ViT-B-16',), dict(
        pretrained='laion2b_s34b_b88k', require_pretrained=True,
        force_quick_gelu=False, force_image_size=96))]


def test_clip_unknown_tag_names_no_hub_repository():
    with pytest.raises(MissingWeightsError) as info:
        CLIPTeacher('ViT-S-32', 'nope', img_size=32)
    assert '(hf-hub:?, file open_clip_model.safetensors)' in str(info.value)
    assert '"ViT-S-32" / "nope" (open_clip)' in str(info.value)


TINY_CLIP = dict(
    embed_dim=24,
    vision_cfg=dict(image_size=32, layers=1, width=32, patch_size=16,
                    head_width=16),
    text_cfg=dict(context_length=8, vocab_size=64, width=16, heads=2,
                  layers=1))


@pytest.fixture
def tiny_clip(monkeypatch):
    """A one-block open_clip architecture 32 wide with a 24-d embedding
    (the widths differ, unlike ViT-S-32's)."""
    from open_clip import factory

    monkeypatch.setitem(factory._MODEL_CONFIGS, 'Tiny-CLIP', TINY_CLIP)
    return 'Tiny-CLIP'


def test_clip_feature_widths_and_one_block_tower(tiny_clip):
    """'cls' (32-d) is the class token after the only block, before
    ln_post; 'embed' (24-d) projects it. Images are resized (bilinear as
    asked) to 32 px and normalised by OpenAI's mean and std by hand."""
    torch.manual_seed(0)
    cls = CLIPTeacher(tiny_clip, pretrained=False, img_size=32,
                      interpolation='bilinear')
    assert cls.model_name == tiny_clip and cls.feature == 'cls'
    assert cls.embed_dim == 32
    embed = CLIPTeacher(tiny_clip, pretrained=False, img_size=32,
                        interpolation='bilinear', feature='embed')
    assert embed.embed_dim == 24
    embed.visual.load_state_dict(cls.visual.state_dict())
    images = smooth(size=40)
    feat = cls(images)
    assert feat.shape == (2, 32)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    x = torch.nn.functional.interpolate(
        (images + 1) / 2, size=(32, 32), mode='bilinear',
        align_corners=False)
    x = (x - mean) / std
    with torch.no_grad():
        tokens = cls.visual.conv1(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([cls.visual.class_embedding.expand(2, 1, -1),
                            tokens], 1) + cls.visual.positional_embedding
        token = cls.visual.transformer(cls.visual.ln_pre(tokens))[:, 0]
    torch.testing.assert_close(feat, token)
    torch.testing.assert_close(
        embed(images), cls.visual.ln_post(token) @ cls.visual.proj)


def test_clip_openai_tag_means_quick_gelu(tiny_clip):
    """OpenAI's CLIP uses x * sigmoid(1.702 x); other tags erf GELU."""
    t = torch.tensor([-2.0, -0.5, 0.7, 1.5])
    openai = CLIPTeacher(tiny_clip, pretrained=False, img_size=32)
    act = openai.visual.transformer.resblocks[0].mlp[1]
    torch.testing.assert_close(act(t), t * torch.sigmoid(1.702 * t))
    other = CLIPTeacher(tiny_clip, 'laion2b', pretrained=False, img_size=32)
    act = other.visual.transformer.resblocks[0].mlp[1]
    torch.testing.assert_close(
        act(t), 0.5 * t * (1 + torch.erf(t / 2 ** 0.5)))


def test_clip_refuses_an_unknown_feature():
    with pytest.raises(ValueError) as info:
        CLIPTeacher('ViT-S-32', pretrained=False, feature='pooled')
    assert str(info.value) == ("feature must be one of ('cls', 'embed'), "
                               'got "pooled"')


def test_clip_loads_an_image_tower_state_dict(tiny_clip, tmp_path):
    torch.manual_seed(0)
    ref = CLIPTeacher(tiny_clip, pretrained=False, img_size=32)
    path = tmp_path / 'visual.pth'
    torch.save({'state_dict': ref.visual.state_dict()}, path)
    loaded = CLIPTeacher(tiny_clip, checkpoint=str(path), img_size=32)
    images = smooth(size=32)
    torch.testing.assert_close(loaded(images), ref(images))


def test_clip_loads_the_visual_part_of_a_full_model_state_dict(
        tiny_clip, tmp_path):
    """A whole open_clip state dict: the ``visual.`` entries load into the
    tower (text tower and logit scale ignored)."""
    import open_clip

    torch.manual_seed(1)
    full = open_clip.create_model(tiny_clip, force_quick_gelu=True,
                                  force_image_size=32)
    path = tmp_path / 'open_clip_model.safetensors'
    save_file({k: v.contiguous() for k, v in full.state_dict().items()},
              str(path))
    loaded = CLIPTeacher(tiny_clip, checkpoint=str(path), img_size=32)
    for name, value in full.visual.state_dict().items():
        assert torch.equal(loaded.visual.state_dict()[name], value), name


def test_dinov2_default_downloads_vit_s_14_at_224(monkeypatch):
    import timm

    calls = []
    monkeypatch.setattr(timm, 'create_model', recorder(calls))
    with pytest.raises(MissingWeightsError) as info:
        DINOv2Teacher()
    assert calls == [(('vit_small_patch14_dinov2',), dict(
        pretrained=True, img_size=224, num_classes=0))]
    assert str(info.value) == missing_message(
        '"vit_small_patch14_dinov2" (timm)',
        'hf-hub:timm/vit_small_patch14_dinov2.lvd142m, file '
        'model.safetensors')
    assert isinstance(info.value.__cause__, Offline)


def test_dinov2_random_and_checkpoint_models_have_no_classifier(tmp_path):
    """The teacher's ViT has no head, so a timm state dict of the
    headless model (built here straight with timm) loads strictly; its
    statistics are the model's timm pretrained config's."""
    import timm

    torch.manual_seed(0)
    ref = timm.create_model('vit_tiny_patch16_224', pretrained=False,
                            img_size=32, num_classes=0)
    path = tmp_path / 'vit.pth'
    torch.save(ref.state_dict(), path)
    teacher = DINOv2Teacher('vit_tiny_patch16_224', checkpoint=str(path),
                            img_size=32, interpolation='bilinear')
    assert teacher.model_name == 'vit_tiny_patch16_224'
    assert teacher.embed_dim == 192
    images = smooth(size=40)
    mean, std = (torch.tensor(ref.pretrained_cfg[k]).view(1, 3, 1, 1)
                 for k in ('mean', 'std'))
    x = torch.nn.functional.interpolate(
        (images + 1) / 2, size=(32, 32), mode='bilinear',
        align_corners=False)
    with torch.no_grad():
        expected = ref.forward_features((x - mean) / std)[:, 0]
    torch.testing.assert_close(teacher(images), expected)
    random = DINOv2Teacher('vit_tiny_patch16_224', pretrained=False,
                           img_size=32)
    assert set(random.model.state_dict()) == set(ref.state_dict())


def test_efficientnet_teacher_resizes_bilinear_to_img_size():
    """Default interpolation 'bilinear'; MEAN = STD = 0.5 make the
    normalised input the [-1, 1] image itself."""
    torch.manual_seed(0)
    teacher = EfficientNetTeacher(pretrained=False, img_size=40)
    assert teacher.interpolation == 'bilinear'
    images = smooth(size=24)
    x = torch.nn.functional.interpolate(images, size=(40, 40),
                                        mode='bilinear', align_corners=False)
    with torch.no_grad():
        pooled = teacher.model.forward_features(x).mean((2, 3))
    torch.testing.assert_close(teacher(images), pooled)
    assert teacher.embed_dim == 1280


def test_efficientnet_teacher_weights_from_checkpoint_or_random(tmp_path):
    import timm

    torch.manual_seed(0)
    ref = timm.create_model('tf_efficientnet_lite0', pretrained=False)
    with torch.no_grad():
        ref.conv_stem.weight.normal_()
    path = tmp_path / 'lite0.pth'
    torch.save(ref.state_dict(), path)
    loaded = EfficientNetTeacher(checkpoint=str(path))
    assert torch.equal(loaded.model.conv_stem.weight, ref.conv_stem.weight)
    # pretrained=False: random weights, the checkpoint ignored.
    random = EfficientNetTeacher(pretrained=False, checkpoint=str(path))
    assert not torch.allclose(random.model.conv_stem.weight,
                              ref.conv_stem.weight)


@pytest.mark.parametrize('mode', ['nearest', 'bicubic2'])
def test_head_refuses_an_unknown_pos_interpolation_when_built(mode):
    """Refused at construction, as TransformerBranchHead does (it failed
    only at the first forward on another grid, with torch's message)."""
    with pytest.raises(ValueError) as info:
        FeaturePredictionHead(in_channels=4, width=16, num_layers=1,
                              num_heads=2, grid_size=3,
                              pos_interpolation=mode)
    assert str(info.value) == ('pos_interpolation must be "bicubic" or '
                               f'"bilinear", got "{mode}"')
