"""The AR generator, its data preprocessor, its token embedding and where
it reads its token layout (fqzoo/models/generators/ar_generator.py,
token_embedding.py, token_layout.py): behaviour that mutation testing
showed no test pinned down (docs/testing.md lists the mutants these tests
kill).

References are worked out another way: the view each sample of augmented
codes keeps is read off codes numbered by hand, the layout a generator
reports is written out in full, label dropout is checked against the rule
"dropped iff a uniform draw u in [0, 1) is below p" (which drops with
probability exactly p), error messages are written out in full, and the
scope a tokenizer config's parts are built in is recorded by a stand-in
encoder. Devices are checked on PyTorch's ``meta`` device, so the
tensors a CUDA run would put on the wrong device show up without a GPU.
"""
import json
import re
import warnings

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope

import fqzoo.models.generators.ar_generator as ar_generator
from fqzoo.models.generators import (
    AutoregressiveGenerator,
    CodeDataPreprocessor,
    FactorizedTokenEmbedding,
)
from fqzoo.models.generators.ar_generator import build_with
from fqzoo.models.generators.token_layout import (
    layout_from_codes,
    layout_from_tokenizer,
    resolve_token_layout,
)

NUM_CLASSES = 4


def make_generator(sizes=(5, 7), grid=(2, 3), *, class_dropout=0.0,
                   **kwargs):
    torch.manual_seed(0)
    gen = AutoregressiveGenerator(
        backbone=dict(type='LlamaGenBackbone', width=16, num_layers=1,
                      num_heads=2, ffn_hidden_dim=16, token_dropout=0.0,
                      resid_dropout=0.0, ffn_dropout=0.0),
        head=dict(type='ParallelLinearHead'), num_classes=NUM_CLASSES,
        grid_size=grid, codebook_sizes=list(sizes),
        class_dropout=class_dropout, init_std=0.3, **kwargs)
    for out in gen.head.outputs:
        torch.nn.init.normal_(out.weight, std=0.5)
    return gen.eval()


def random_codes(gen, batch=2):
    h, w = gen.grid_size
    return torch.stack([torch.randint(v, (batch, h, w))
                        for v in gen.codebook_sizes], 1)


# ------------------------------------------------- CodeDataPreprocessor
def numbered_views(batch=64, views=3, sub_tokens=2):
    """``[B, A, G, 2, 2]`` codes whose every entry of view a of sample b
    is ``10 * b + a``, so the view kept is read off the output."""
    number = 10 * torch.arange(batch)[:, None] + torch.arange(views)
    return number[:, :, None, None, None].expand(
        batch, views, sub_tokens, 2, 2).to(torch.int32)


def kept_views(inputs):
    """The view each output sample came from (numbered_views' numbering),
    checking the whole grid of the sample came from that one view."""
    first = inputs[:, 0, 0, 0]
    assert torch.equal(inputs, first[:, None, None, None].expand_as(inputs))
    batch = torch.arange(len(inputs))
    assert torch.equal(first // 10, batch)  # each sample keeps its own
    return first % 10


def test_augmented_codes_in_evaluation_keep_view_0():
    """Evaluation is the default (``training=False``): view 0, always."""
    codes = numbered_views()
    out = CodeDataPreprocessor()(dict(codes=codes, label=list(range(64))))
    assert out['inputs'].shape == (64, 2, 2, 2)
    assert out['inputs'].dtype == torch.long
    assert kept_views(out['inputs']).tolist() == [0] * 64
    assert out['data_samples'].tolist() == list(range(64))
    # a list of per-sample [A, G, h, w] tensors, as collated
    out = CodeDataPreprocessor()(dict(codes=list(codes), label=[1] * 64),
                                 training=False)
    assert kept_views(out['inputs']).tolist() == [0] * 64


def test_augmented_codes_in_training_draw_one_view_per_sample():
    """3 views, 2 sub-tokens: each of the 64 samples keeps one whole view,
    all 3 views occur (a sample misses a given view with probability
    2/3; all 64 miss it with probability (2/3)^64), and the draw uses
    torch's random state, so reseeding repeats it."""
    codes = numbered_views()
    pre = CodeDataPreprocessor()
    torch.manual_seed(1)
    first = kept_views(pre(dict(codes=codes, label=[0] * 64),
                           training=True)['inputs'])
    assert sorted(set(first.tolist())) == [0, 1, 2]
    torch.manual_seed(1)
    again = kept_views(pre(dict(codes=codes, label=[0] * 64),
                           training=True)['inputs'])
    assert torch.equal(first, again)


def test_labels_go_to_the_device_of_the_codes():
    """On the ``meta`` device (as on a GPU) the labels follow the codes."""
    pre = CodeDataPreprocessor().to('meta')
    out = pre(dict(codes=numbered_views(batch=2), label=[1, 2]))
    assert out['inputs'].device.type == 'meta'
    assert out['data_samples'].device.type == 'meta'
    assert out['inputs'].shape == (2, 2, 2, 2)


# ------------------------------------------------------------ build_with
def test_build_with_a_class_as_type_passes_what_it_takes():
    emb = build_with(dict(type=FactorizedTokenEmbedding), width=8,
                     vocab_sizes=[3, 4], grid_size=(2, 2))
    assert isinstance(emb, FactorizedTokenEmbedding)
    assert emb.vocab_sizes == [3, 4]
    assert [t.weight.shape for t in emb.tables] == [(3, 8), (4, 8)]
    # the config's own value wins over the one available
    emb = build_with(dict(type=FactorizedTokenEmbedding, width=6), width=8,
                     vocab_sizes=[3])
    assert emb.tables[0].weight.shape == (3, 6)


def test_build_with_an_unknown_type_gives_the_registry_message():
    with pytest.raises(KeyError, match='Unknown generator type '
                       '"NoSuchComponent". Known generator types: .*'
                       'FactorizedTokenEmbedding'):
        build_with(dict(type='NoSuchComponent'), width=8)


# ----------------------------------------------- AutoregressiveGenerator
@pytest.mark.parametrize('init_std', [None, 0.1])
def test_init_std_is_the_weights_std_and_defaults_to_0_02(init_std):
    """Linear and embedding weights start N(0, init_std), 0.02 by
    default: the sample std of the 11 x 64 class embedding, a 12 x 64
    token table and the 64 x 128 merge is within 15% of it (its error is
    about 3%)."""
    torch.manual_seed(0)
    extra = {} if init_std is None else dict(init_std=init_std)
    gen = AutoregressiveGenerator(
        backbone=dict(type='LlamaGenBackbone', width=64, num_layers=1,
                      num_heads=2, ffn_hidden_dim=16),
        head=dict(type='ParallelLinearHead'), num_classes=10,
        grid_size=(2, 2), codebook_sizes=[12, 12], **extra)
    for weight in (gen.class_embed.weight, gen.token_embed.tables[0].weight,
                   gen.token_embed.proj.weight):
        assert float(weight.std()) == pytest.approx(init_std or 0.02,
                                                    rel=0.15)


def test_default_data_preprocessor_reads_code_batches():
    """None (the default), a config and a module all give a
    CodeDataPreprocessor: ``dict(codes, label)`` -> inputs, data_samples.
    """
    batch = dict(codes=numbered_views(batch=3), label=[2, 0, 1])
    given = CodeDataPreprocessor()
    for value in (None, dict(type='CodeDataPreprocessor'), given):
        gen = make_generator(data_preprocessor=value)
        pre = gen.data_preprocessor
        assert isinstance(pre, CodeDataPreprocessor)
        out = pre(batch)
        assert kept_views(out['inputs']).tolist() == [0, 0, 0]
        assert out['data_samples'].tolist() == [2, 0, 1]
    assert gen.data_preprocessor is given


def test_forward_defaults_to_the_logits():
    gen = make_generator()
    codes, labels = random_codes(gen), torch.tensor([0, 3])
    for a, b in zip(gen(codes, labels), gen.logits(codes, labels)):
        assert torch.equal(a, b)


def test_token_layout_is_its_codebook_sizes_and_grid():
    gen = make_generator(sizes=(5, 7, 3), grid=(2, 3))
    expected = dict(codebook_sizes=[5, 7, 3], sub_tokens=None,
                    downsample_factor=None, grids={}, grid=[2, 3])
    assert gen.token_layout() == expected
    assert gen.token_layout([64, (32, 48)]) == expected  # ignored


def test_wrong_code_shape_message_names_g_h_and_w():
    """G = 3 and h = 2 differ, so the message shows which is which."""
    gen = make_generator(sizes=(5, 7, 3), grid=(2, 3))
    codes = torch.zeros(2, 2, 2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match=re.escape(
            'indices must be [B, 3, 2, 3] (B, G, h, w), got [2, 2, 2, 3]')):
        gen.logits(codes, torch.tensor([0, 1]))


def test_a_label_is_dropped_iff_its_draw_is_below_class_dropout():
    """With u uniform on [0, 1), P(u < p) = p: a label whose draw equals
    p exactly is kept (``u <= p`` would drop with probability above p).
    p is set to the draw of label 2, read from the same seed."""
    labels = torch.tensor([0, 1, 2, 3, 1, 2])
    torch.manual_seed(5)
    draws = torch.rand(labels.shape)
    p = float(draws[2])
    gen = make_generator(class_dropout=p).train()
    torch.manual_seed(5)
    out = gen.drop_labels(labels)
    expected = torch.where(draws < p, NUM_CLASSES, labels)
    assert out[2] == 2
    assert torch.equal(out, expected)
    assert 0 < int((out == NUM_CLASSES).sum()) < len(labels)


def test_dropped_labels_stay_on_the_device_of_the_labels():
    gen = make_generator(class_dropout=0.5).train()
    labels = torch.tensor([0, 1, 2, 3], device='meta')
    out = gen.drop_labels(labels)
    assert out.device.type == 'meta' and out.shape == (4, )


def test_labels_go_to_the_device_of_the_model():
    """Whole-number labels on the CPU are moved to the model's device
    (``meta`` here: an empty batch, as a meta tensor has no values to
    range-check)."""
    gen = make_generator().to('meta')
    out = gen._check_labels(torch.tensor([], dtype=torch.long))
    assert out.device.type == 'meta' and out.dtype == torch.long
    assert out.shape == (0, )


def test_float_labels_go_to_the_device_of_the_model(monkeypatch):
    """Float labels are read as classes on the CPU (class_labels) and the
    classes put on the model's device. On ``meta`` class_labels cannot read
    the values, so it is given the (empty) labels as a CPU tensor."""
    def on_cpu(values):
        assert values.device.type == 'meta' and values.numel() == 0
        result = real(torch.empty(values.shape))
        assert isinstance(result, np.ndarray)
        return result

    real = ar_generator.class_labels
    monkeypatch.setattr(ar_generator, 'class_labels', on_cpu)
    gen = make_generator().to('meta')
    out = gen._check_labels(torch.tensor([]))
    assert out.device.type == 'meta' and out.dtype == torch.long
    assert out.shape == (0, )


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_cpu_labels_with_a_cuda_model():
    """Labels given on the CPU, ints or whole floats, are the classes of
    the same labels given on the GPU."""
    gen = make_generator().cuda()
    codes = random_codes(gen).cuda()
    expected = gen.logits(codes, torch.tensor([1, 3], device='cuda'))
    for labels in (torch.tensor([1, 3]), torch.tensor([1.0, 3.0])):
        for a, b in zip(gen.logits(codes, labels), expected):
            torch.testing.assert_close(a, b)


# ------------------------------------------------------- token layout
def test_layout_of_unaugmented_codes_reads_the_last_two_axes(tmp_path):
    """An unaugmented manifest's code_shape is [G, h, w]."""
    (tmp_path / 'manifest.json').write_text(json.dumps(dict(
        code_shape=[2, 3, 5], codebook_sizes=[7, 9])))
    assert layout_from_codes(tmp_path) == ((3, 5), [7, 9])


def test_missing_manifest_message_in_full(tmp_path):
    path = tmp_path / 'manifest.json'
    with pytest.raises(FileNotFoundError, match=re.escape(
            f'{path} not found: the generator reads its token grid and '
            'codebook sizes from it (extract codes with '
            'tools/extract_codes.py), or set grid_size and codebook_sizes '
            'in the config') + '$'):
        layout_from_codes(tmp_path)


def test_no_layout_source_message_in_full():
    with pytest.raises(ValueError, match='^' + re.escape(
            'The generator needs grid_size and codebook_sizes, or tokens= '
            '(a codes folder, or dict(tokenizer=CONFIG, image_size=S)) to '
            'read them from') + '$'):
        resolve_token_layout((2, 2), None)


def test_a_grid_of_one_row_or_column_is_a_grid():
    assert resolve_token_layout((1, 4), [3]) == ((1, 4), [3])
    assert resolve_token_layout([5, 1], (3, 2)) == ((5, 1), [3, 2])
    with pytest.raises(ValueError, match='^' + re.escape(
            'grid_size must be (h, w), got (0, 4)') + '$'):
        resolve_token_layout((0, 4), [3])


TOKENIZER = '''
model = dict(
    type='ImageTokenizer',
    encoder=dict(type='VQGANEncoder', ch=8, ch_mult=(1, 2, 2),
                 num_res_blocks=1, z_channels=4, num_groups=4),
    quantizer=dict(type='FactorizedQuantizer', num_codebooks=3,
                   quantizer=dict(type='VectorQuantizer', codebook_size=12,
                                  embed_dim=4)))
'''


def test_layout_from_a_loaded_tokenizer_config(tmp_path):
    """A Config object is used as it is (its text is no file name)."""
    path = tmp_path / 'tok.py'
    path.write_text(TOKENIZER)
    assert layout_from_tokenizer(Config.fromfile(str(path)), 16) == (
        (4, 4), [12, 12, 12])


def test_layout_grid_is_whole_numbers(tmp_path):
    path = tmp_path / 'tok.py'
    path.write_text(TOKENIZER)
    grid, _ = layout_from_tokenizer(path, (16, 8))
    assert grid == (4, 2)
    assert [type(v) for v in grid] == [int, int]


@pytest.mark.parametrize('size', [(18, 16), (16, 18)])
def test_one_side_not_divisible_is_refused(tmp_path, size):
    path = tmp_path / 'tok.py'
    path.write_text(TOKENIZER)
    with pytest.raises(ValueError, match=re.escape(
            f'image size {size} is not divisible by the tokenizer\'s '
            'downsample factor 4')):
        layout_from_tokenizer(path, size)


class Codebooks:
    """Quantizer stand-in: 2 sub-codebooks of 6 codes."""

    codebook_size, num_codebooks = 6, 2


class ScopeProbe:
    """Encoder stand-in (downsample 4) that records the default scope it
    is built in."""

    downsample_factor = 4
    scopes = []

    def __init__(self):
        ScopeProbe.scopes.append(
            DefaultScope.get_current_instance().scope_name)


class NoFactor:
    """Encoder stand-in without a ``downsample_factor``."""


@pytest.fixture
def restore_scope():
    before = DefaultScope.get_current_instance()
    ScopeProbe.scopes.clear()
    yield
    if before is not None:
        init_default_scope(before.scope_name)


def stand_in_config(encoder, **extra):
    return Config(dict(model=dict(encoder=dict(type=encoder),
                                  quantizer=dict(type=Codebooks)), **extra))


def test_tokenizer_parts_are_built_in_the_configs_scope(restore_scope):
    config = stand_in_config(ScopeProbe, default_scope='mmengine')
    assert layout_from_tokenizer(config, (8, 12)) == ((2, 3), [6, 6])
    assert ScopeProbe.scopes == ['mmengine']


def test_tokenizer_parts_are_built_in_fqzoo_by_default(restore_scope):
    init_default_scope('mmengine')
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no unknown-scope warning
        assert layout_from_tokenizer(stand_in_config(ScopeProbe), 4) == (
            (1, 1), [6, 6])
    assert ScopeProbe.scopes == ['fqzoo']


def test_an_encoder_without_downsample_factor_is_explained(restore_scope):
    config = stand_in_config(NoFactor)
    with pytest.raises(AttributeError, match='(?s)^The encoder of .* has '
                       'no downsample_factor: set grid_size in the '
                       'generator config$'):
        layout_from_tokenizer(config, 16)
