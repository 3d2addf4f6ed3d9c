"""More error paths no other test reached (``tools/dev/raise_coverage.py``,
docs/testing.md): each wrong input's message names the culprit, and the valid
input beside it works, checked by value."""
import gzip
import inspect
from unittest import mock

import numpy as np
import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.runner import FlexibleRunner
from PIL import Image
from torch import nn

from fqzoo.datasets.fashion_mnist import (
    IDX_IMAGES_MAGIC,
    IDX_LABELS_MAGIC,
    load_fashion_mnist,
    read_idx,
)
from fqzoo.datasets.image_folder import BadImageError, ImageFolderDataset
from fqzoo.datasets.photo_patches import load_photo
from fqzoo.datasets.transforms.processing import ResizeShortEdge
from fqzoo.engine.flexible_runner import TokenizerFlexibleRunner
from fqzoo.engine.fsdp import TokenizerFSDPStrategy
from fqzoo.engine.hooks.non_finite import NonFiniteGuardHook
from fqzoo.errors import InputKeyError
from fqzoo.evaluation.metrics.pixel import _PairwiseImageMetric
from fqzoo.models.encoders.branch_heads import TransformerBranchHead
from fqzoo.models.losses.perceptual import _FrozenPerceptualLoss
from fqzoo.models.quantizers import (
    BaseQuantizer,
    LookupFreeQuantizer,
    QuantizerOutput,
)
from fqzoo.models.teachers import FrozenTeacher
from fqzoo.models.tokenizers import ImageTokenizer
from fqzoo.registry import METRICS, MODELS, QUANTIZERS, TEACHERS


def write_idx(path, magic, array):
    header = magic.to_bytes(4, 'big') + b''.join(
        int(d).to_bytes(4, 'big') for d in array.shape)
    with gzip.open(path, 'wb') as file:
        file.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_unreadable_file_and_count_mismatch(tmp_path):
    with pytest.raises(ValueError, match='Cannot read IDX file .*plain.gz'):
        (tmp_path / 'plain.gz').write_bytes(b'not gzip at all')
        read_idx(str(tmp_path / 'plain.gz'), IDX_LABELS_MAGIC)
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    write_idx(tmp_path / 't10k-images-idx3-ubyte.gz', IDX_IMAGES_MAGIC, images)
    write_idx(tmp_path / 't10k-labels-idx1-ubyte.gz', IDX_LABELS_MAGIC,
              np.array([3, 1, 4]))
    with pytest.raises(ValueError, match="2 images but 3 labels in the "
                       "'test' split"):
        load_fashion_mnist(str(tmp_path), 'test')
    write_idx(tmp_path / 't10k-labels-idx1-ubyte.gz', IDX_LABELS_MAGIC,
              np.array([3, 1]))
    got_images, got_labels = load_fashion_mnist(str(tmp_path), 'test')
    assert np.array_equal(got_images, images) and got_labels.tolist() == [3, 1]


def test_unknown_photo_lists_the_known_ones():
    with pytest.raises(ValueError, match="Unknown photo 'lena'.*coffee"):
        load_photo('lena')
    assert load_photo('coffee').shape == (400, 600, 3)


def test_resize_short_edge_size():
    with pytest.raises(ValueError, match='size must be >= 1, got 0'):
        ResizeShortEdge(size=0)
    out = ResizeShortEdge(size=4)(dict(img=np.zeros((8, 16, 3), np.uint8)))
    assert out['img'].shape[:2] == (4, 8)


def test_lfq_entropy_groups_must_divide_embed_dim():
    with pytest.raises(ValueError, match='embed_dim 10 .*entropy_groups 3'):
        LookupFreeQuantizer(embed_dim=10, entropy_groups=3)
    assert LookupFreeQuantizer(embed_dim=10, entropy_groups=2).embed_dim == 10


def test_transformer_head_pos_interpolation_named():
    with pytest.raises(ValueError, match='"nearest"'):
        TransformerBranchHead(in_channels=8, width=16, num_layers=1,
                              num_heads=2, grid_size=2,
                              pos_interpolation='nearest')
    head = TransformerBranchHead(in_channels=8, width=16, num_layers=1,
                                 num_heads=2, grid_size=2,
                                 pos_interpolation='bilinear')
    assert head(torch.randn(1, 8, 2, 2)).shape[-2:] == (2, 2)


@pytest.mark.parametrize('kwargs,match', [
    (dict(policy='ignore'), 'policy must be one of .*"ignore"'),
    (dict(max_consecutive=0), 'max_consecutive must be >= 1, got 0')])
def test_non_finite_guard_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NonFiniteGuardHook(**kwargs)
    hook = NonFiniteGuardHook(policy='stop', max_consecutive=3)
    assert (hook.policy, hook.max_consecutive) == ('stop', 3)


def identity_quantizer_methods():
    """``forward`` and ``embed_indices`` of a quantizer that passes ``z``
    through with index 0 everywhere."""
    return dict(
        forward=lambda self, z: QuantizerOutput(z, z.new_zeros(
            z.shape[0], 1, *z.shape[2:], dtype=torch.long)),
        embed_indices=lambda self, indices: indices.float())


# base class, its constructor arguments, the methods a subclass must write
ABSTRACT_BASES = {
    'quantizer': (BaseQuantizer, (), identity_quantizer_methods()),
    'teacher': (FrozenTeacher, ((0.5,), (0.5,)),
                dict(features=lambda self, x: x.flatten(1))),
    'perceptual loss': (_FrozenPerceptualLoss, ('mean',), dict(
        distance=lambda self, pred, target: (pred - target).abs().flatten(
            1).mean(1))),
    'pixel metric': (_PairwiseImageMetric, (), dict(
        score=lambda self, pred, target: pred.flatten(1).mean(1))),
}


@pytest.mark.parametrize('kind', sorted(ABSTRACT_BASES))
def test_plugin_missing_an_abstract_method_cannot_be_built(kind):
    base, args, methods = ABSTRACT_BASES[kind]
    for missing in methods:
        written = {k: v for k, v in methods.items() if k != missing}
        incomplete = type('IncompletePlugin', (base,), written)
        with pytest.raises(TypeError, match=r"Can't instantiate abstract "
                           rf'class IncompletePlugin.*{missing}'):
            incomplete(*args)
    complete = type('CompletePlugin', (base,), methods)(*args)
    assert isinstance(complete, base)


@pytest.mark.parametrize('registry', [QUANTIZERS, TEACHERS, MODELS, METRICS],
                         ids=lambda r: r.name)
def test_every_registered_component_is_concrete(registry):
    registry.import_from_location()
    classes = {name: obj for name, obj in registry.module_dict.items()
               if inspect.isclass(obj)}
    assert classes
    assert [name for name, cls in classes.items()
            if inspect.isabstract(cls)] == []


def test_pipeline_that_drops_an_image_is_named(tmp_path):
    for name in ('a.png', 'b.png'):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / name)

    def drop_b(results):
        return None if results['img_path'].endswith('b.png') else results

    dataset = ImageFolderDataset(str(tmp_path), pipeline=[
        dict(type='LoadImageFromFile', imdecode_backend='pillow'), drop_b,
        dict(type='PackTokenizerInputs')])
    with pytest.raises(BadImageError, match=r"The pipeline dropped image "
                       r"'.*b\.png'"):
        dataset[1]
    assert dataset[0]['inputs'].shape == (3, 4, 4)


def test_flexible_runner_unknown_strategy_lists_the_known_ones():
    runner = TokenizerFlexibleRunner.__new__(TokenizerFlexibleRunner)
    with pytest.raises(InputKeyError, match='Unknown strategy type '
                       '"TokenizerFSPDStrategy".*TokenizerFSDPStrategy'):
        runner.build_strategy(dict(type='TokenizerFSPDStrategy'))
    # a known name reaches FlexibleRunner.build_strategy as its class
    with mock.patch.object(FlexibleRunner, 'build_strategy',
                           lambda self, strategy: strategy):
        resolved = runner.build_strategy(dict(type='TokenizerFSDPStrategy',
                                              state_dict_cfg='full'))
    assert resolved == dict(type=TokenizerFSDPStrategy, state_dict_cfg='full')


def test_fsdp_strategy_refuses_a_stepped_optimizer():
    model = nn.Linear(2, 1)
    strategy = TokenizerFSDPStrategy.__new__(TokenizerFSDPStrategy)
    strategy.id_to_name = {id(p): n for n, p in model.named_parameters()}

    def wrapper():
        return OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1,
                                            momentum=0.9))

    stepped = wrapper()
    model(torch.ones(1, 2)).sum().backward()
    stepped.optimizer.step()
    with pytest.raises(ValueError, match='the optimizer of an OptimWrapper '
                       'given to TokenizerFSDPStrategy must not have stepped'):
        strategy.build_optim_wrapper(stepped, model)
    fresh = wrapper()
    moved = strategy.build_optim_wrapper(fresh, model)
    assert moved is fresh
    assert [p for g in moved.optimizer.param_groups for p in g['params']] \
        == list(model.parameters())
    assert moved.optimizer.defaults['momentum'] == 0.9


def test_quantizer_channels_must_split_into_its_branches():
    two_branches = type('TwoBranchPlugin', (BaseQuantizer,), dict(
        identity_quantizer_methods(), num_codebooks=2, num_branches=2,
        codebook_size=4, embed_dim=2))

    def tokenizer(in_channels):
        quantizer = two_branches()
        quantizer.in_channels = in_channels
        return ImageTokenizer(
            encoder=dict(type='VQGANEncoder', ch=8, ch_mult=(1, 2),
                         num_res_blocks=1, z_channels=8),
            decoder=dict(type='VQGANDecoder', ch=8, ch_mult=(1, 2),
                         num_res_blocks=1, z_channels=8),
            quantizer=quantizer)

    with pytest.raises(ValueError, match='TwoBranchPlugin: in_channels 5 is '
                       'not divisible by num_branches 2'):
        tokenizer(5)
    assert len(tokenizer(4).heads) == 2
