"""Bad input is answered in one line that names the culprit.

Each :class:`Case` triggers one kind of bad input (a config, a file, a
tensor, a command line) and says which exception must come out and which
fragments (regular expressions) its message must contain: the file, key or
value at fault and what was expected. A new case is one more entry of
:data:`CASES`. The message must be one line and come from fqzoo, not a bare
error from deep inside a library (an ``IndexError`` from a codebook lookup,
an ``AttributeError`` from the tokenizer's constructor ...).
"""
import contextlib
import importlib.util
import io
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image

from fqzoo.apis import init_generator, init_tokenizer
from fqzoo.datasets.image_folder import BadImageError, ImageFolderDataset
from fqzoo.engine.runner import TokenizerRunner
from fqzoo.errors import (
    DEBUG_ENV,
    InputError,
    InputKeyError,
    InputTypeError,
    exit_on_input_error,
)
from fqzoo.generation.sampler import sample_batch
from fqzoo.models.quantizers import BaseQuantizer, QuantizerOutput
from fqzoo.registry import DATASETS, QUANTIZERS
from fqzoo.utils.checkpoint import safe_load

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Case:
    """One bad input.

    Args:
        id (str): test id.
        trigger (Callable[[Path], Any]): feeds the bad input; gets a fresh
            temporary folder.
        error (type): the exception it must raise.
        fragments (Sequence[str]): regular expressions its message must
            contain.
    """

    id: str
    trigger: Callable[[Path], Any]
    error: type
    fragments: Sequence[str]


# ----------------------------------------------------------------- helpers
def tiny_model(**overrides) -> dict:
    """A tiny VQ tokenizer config (downsample 2, 32 codes of dim 4)."""
    model = dict(
        type='ImageTokenizer',
        encoder=dict(type='VQGANEncoder', ch=8, ch_mult=(1, 2),
                     num_res_blocks=1, z_channels=8),
        decoder=dict(type='VQGANDecoder', ch=8, ch_mult=(1, 2),
                     num_res_blocks=1, z_channels=8),
        quantizer=dict(type='VectorQuantizer', codebook_size=32,
                       embed_dim=4))
    model.update(overrides)
    return model


def tiny_tokenizer(**overrides):
    torch.manual_seed(0)
    return init_tokenizer(dict(model=tiny_model(**overrides)))


def dual_quantizer(codebook_size: int = 32) -> dict:
    return dict(type='FactorizedQuantizer', num_codebooks=2,
                quantizer=dict(type='VectorQuantizer',
                               codebook_size=codebook_size, embed_dim=4))


def semantic(branch: int) -> dict:
    return dict(type='SemanticRegularizer', branch=branch,
                teacher=dict(type='EfficientNetTeacher'),
                head=dict(type='FeaturePredictionHead', in_channels=4,
                          width=16, num_layers=1, num_heads=2, grid_size=4))


def tiny_generator(codebook_sizes: Sequence[int]):
    torch.manual_seed(0)
    return init_generator(dict(model=dict(
        type='AutoregressiveGenerator',
        backbone=dict(type='LlamaGenBackbone', width=16, num_layers=1,
                      num_heads=2, ffn_hidden_dim=16),
        head=dict(type='ParallelLinearHead'), num_classes=3,
        grid_size=(4, 4), codebook_sizes=list(codebook_sizes))))


def save_weights(model: torch.nn.Module, path: Path) -> Path:
    torch.save(dict(state_dict=model.state_dict()), path)
    return path


def write_png(path: Path, value: int = 128) -> Path:
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path)
    return path


def first_image(folder: Path, **kwargs) -> dict:
    return ImageFolderDataset(str(folder), **kwargs)[0]


def truncated_jpeg() -> bytes:
    """The first half of a 64x64 JPEG's bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(
        0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, 'JPEG')
    return buffer.getvalue()[:buffer.tell() // 2]


def truncated_checkpoint(tmp: Path) -> Path:
    """``tmp/half.pth``: the first 3000 bytes of a tokenizer checkpoint."""
    full = save_weights(tiny_tokenizer(), tmp / 'full.pth').read_bytes()
    (tmp / 'half.pth').write_bytes(full[:3000])
    return tmp / 'half.pth'


def subfolder(tmp: Path, name: str, files: Optional[dict] = None) -> Path:
    """``tmp/name`` (made if needed) holding ``files`` (name -> bytes)."""
    folder = tmp / name
    folder.mkdir(parents=True, exist_ok=True)
    for file, content in (files or {}).items():
        (folder / file).write_bytes(content)
    return folder


def folder_with(tmp: Path, name: str, content: bytes) -> Path:
    """``tmp/imgs`` holding one good image and ``name`` with ``content``."""
    folder = tmp / 'imgs'
    folder.mkdir()
    write_png(folder / 'a_good.png')
    (folder / name).write_bytes(content)
    return folder


def skipped_image_warning(tmp: Path) -> None:
    """With ``skip_bad_files`` a bad image is a warning naming the file,
    raised here as the error it would otherwise be ignored as."""
    folder = folder_with(tmp, 'b_empty.png', b'')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        ImageFolderDataset(str(folder), skip_bad_files=True)[1]


class PluginWithoutInChannels(BaseQuantizer):
    """A user's quantizer that forgot ``in_channels`` (sign quantizer: a
    token is the binary number of its channels' signs)."""

    def __init__(self, embed_dim: int = 4) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.codebook_size = 2 ** embed_dim

    def _bit_values(self):
        return 2 ** torch.arange(self.embed_dim).view(1, -1, 1, 1)

    def forward(self, z):
        bits = (z > 0).long()
        indices = (bits * self._bit_values()).sum(1, keepdim=True)
        return QuantizerOutput(z + (bits * 2 - 1 - z).detach(), indices)

    def embed_indices(self, indices):
        return (indices // self._bit_values() % 2 * 2 - 1).float()


QUANTIZERS.register_module(name='_TestPluginWithoutInChannels', force=True,
                           module=PluginWithoutInChannels)


class ToolFailed(Exception):
    """A command line tool stopped; the message is its last stderr line."""


def train_tool_args(*argv: str):
    """``tools/train.py``'s ``parse_args`` on ``argv``, in this process."""
    spec = importlib.util.spec_from_file_location(
        '_fqzoo_train_tool', REPO / 'tools' / 'train.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    stderr = io.StringIO()
    with mock.patch.object(sys, 'argv', ['train.py', *argv]), \
            contextlib.redirect_stderr(stderr):
        try:
            return tool.parse_args()
        except SystemExit as exit_:
            text = stderr.getvalue()
            assert 'Traceback' not in text
            raise ToolFailed(f'exit {exit_.code}: '
                             f'{text.strip().splitlines()[-1]}') from None


def runner_build_model(cfg: dict):
    """``TokenizerRunner.build_model`` (what ``tools/train.py`` calls on the
    config's ``model``) without building the rest of a runner."""
    return TokenizerRunner.__new__(TokenizerRunner).build_model(cfg)


# ------------------------------------------------------------------- cases
CASES = [
    # Configs: unknown types and misspelt arguments are refusals
    # (InputError) that are still the KeyError / TypeError they were.
    Case('unknown-quantizer-type',
         lambda tmp: QUANTIZERS.build(dict(type='VectorQuantiser')),
         InputKeyError, ['Unknown quantizer type "VectorQuantiser"',
                         'Known quantizer types: .*VectorQuantizer',
                         'FactorizedQuantizer']),
    Case('unknown-encoder-type-in-config',
         lambda tmp: init_tokenizer(dict(model=tiny_model(
             encoder=dict(type='VQGANEncodr')))),
         InputKeyError, ['Unknown model type "VQGANEncodr"',
                         'VQGANEncoder']),
    Case('unknown-model-type-via-runner',
         lambda tmp: runner_build_model(dict(type='ImageTokeniser')),
         InputKeyError, ['Unknown model type "ImageTokeniser"',
                         'ImageTokenizer']),
    Case('unknown-teacher-type',
         lambda tmp: tiny_tokenizer(
             quantizer=dual_quantizer(),
             regularizers=[dict(semantic(1), teacher=dict(type='CLIPTeachr'))]),
         InputKeyError, ['Unknown teacher type "CLIPTeachr"',
                         'EfficientNetTeacher']),
    Case('misspelt-quantizer-argument',
         lambda tmp: tiny_tokenizer(quantizer=dict(
             type='VectorQuantizer', codebok_size=32, embed_dim=4)),
         InputTypeError, ['VectorQuantizer', 'unknown argument.*codebok_size',
                          'Accepted arguments: codebook_size, embed_dim']),
    Case('misspelt-nested-sub-quantizer-argument',
         lambda tmp: QUANTIZERS.build(dict(
             type='FactorizedQuantizer', quantizer=dict(
                 type='VectorQuantizer', codebook_size=8, embed_dim=4,
                 l2norm=True))),
         InputTypeError, ['VectorQuantizer', 'l2norm', 'Accepted.*l2_norm']),
    Case('misspelt-model-argument-via-runner',
         lambda tmp: runner_build_model(tiny_model(disc_strat=100)),
         InputTypeError, ['ImageTokenizer', 'disc_strat',
                          'Accepted.*disc_start']),
    Case('misspelt-dataset-argument',
         lambda tmp: DATASETS.build(dict(
             type='ImageFolderDataset', data_root=str(tmp),
             skip_bad_file=True)),
         InputTypeError, ['ImageFolderDataset', 'skip_bad_file\\b',
                          'Accepted.*skip_bad_files']),
    # Configs: sizes that are not positive integers (each quantizer's own
    # are checked by value below), here nested in a model config.
    Case('zero-codebook-size-of-a-sub-quantizer-via-runner',
         lambda tmp: runner_build_model(tiny_model(
             quantizer=dual_quantizer(codebook_size=0))),
         InputError, ['^VectorQuantizer: codebook_size must be a positive '
                      'integer, got 0$']),
    Case('float-number-of-codebooks',
         lambda tmp: tiny_tokenizer(quantizer=dict(dual_quantizer(),
                                                   num_codebooks=2.0)),
         InputError, ['^FactorizedQuantizer: num_codebooks must be a '
                      'positive integer, got 2.0$']),
    # Shapes that do not fit.
    Case('image-size-not-divisible',
         lambda tmp: tiny_tokenizer().encode(torch.zeros(1, 3, 15, 16)),
         ValueError, ['image size 15x16', 'not divisible',
                      'downsample factor 2']),
    Case('image-size-not-divisible-in-training-loss',
         lambda tmp: tiny_tokenizer()(torch.zeros(2, 3, 16, 17) + 0.1,
                                      mode='loss'),
         ValueError, ['image size 16x17', 'downsample factor 2']),
    Case('more-heads-than-branches',
         lambda tmp: tiny_tokenizer(quantizer=dual_quantizer(),
                                    heads=[None, None, None]),
         ValueError, ['3 branch heads', 'FactorizedQuantizer',
                      '2 branches']),
    Case('teacher-branch-out-of-range',
         lambda tmp: tiny_tokenizer(quantizer=dual_quantizer(),
                                    regularizers=[semantic(2)]),
         ValueError, ['SemanticRegularizer reads branch 2',
                      'FactorizedQuantizer has 2 branch',
                      r'must be in \[0, 2\)']),
    Case('teacher-on-a-single-branch-quantizer',
         lambda tmp: tiny_tokenizer(regularizers=[semantic(1)]),
         ValueError, ['branch 1', 'VectorQuantizer has 1 branch',
                      r'\[0, 1\)']),
    Case('plugin-quantizer-without-in-channels',
         lambda tmp: tiny_tokenizer(quantizer=dict(
             type='_TestPluginWithoutInChannels')),
         TypeError, ['PluginWithoutInChannels', 'quantizer contract',
                     r'in_channels \(channels of z\)']),
    # Token indices.
    Case('decode-index-too-large',
         lambda tmp: tiny_tokenizer().decode(
             torch.tensor([[[[0, 5], [40, 31]]]])),
         ValueError, ['codebook 0 of VectorQuantizer', r'\[0, 32\)',
                      'got 40', '1 out of range']),
    Case('decode-negative-index-in-second-codebook',
         lambda tmp: tiny_tokenizer(quantizer=dual_quantizer()).decode(
             torch.tensor([[[[1, 2]], [[-3, 4]]]])),
         ValueError, ['codebook 1 of FactorizedQuantizer', r'\[0, 32\)',
                      'got -3']),
    Case('decode-wrong-number-of-codebooks',
         lambda tmp: tiny_tokenizer().decode(torch.zeros(1, 2, 4, 4).long()),
         ValueError, ['G = 1 sub-codebooks of VectorQuantizer',
                      r'got \[1, 2, 4, 4\]']),
    Case('generator-tokens-beyond-the-tokenizer-codebook',
         lambda tmp: sample_batch(tiny_generator([64]), tiny_tokenizer(),
                                  np.array([0, 1]), np.array([0, 1])),
         ValueError, ['codebook 0 of VectorQuantizer', r'\[0, 32\)',
                      'got (3[2-9]|[4-5][0-9]|6[0-3])\\b']),
    Case('generator-input-index-out-of-range',
         lambda tmp: tiny_generator([8, 16]).logits(
             torch.stack([torch.zeros(1, 4, 4), torch.full((1, 4, 4), 20.)],
                         1).long(), torch.tensor([0])),
         ValueError, ['sub-token 1', r'\[0, 16\)', '20']),
    # Image folders.
    Case('empty-image-folder',
         lambda tmp: ImageFolderDataset(str(subfolder(tmp, 'empty_photos'))),
         FileNotFoundError, ['No images', r'\.png', 'empty_photos']),
    Case('folder-without-images',
         lambda tmp: ImageFolderDataset(str(subfolder(
             tmp, 'only_text', {'notes.txt': b'x', 'data.csv': b'1,2'}))),
         FileNotFoundError, ['No images', 'only_text']),
    Case('empty-class-folders',
         lambda tmp: ImageFolderDataset(str(subfolder(
             tmp, 'classes/cat', {'notes.txt': b'x'}).parent)),
         FileNotFoundError, ['No images', 'classes']),
    Case('missing-image-folder',
         lambda tmp: ImageFolderDataset(str(tmp / 'no_such_dir')),
         FileNotFoundError, ['no_such_dir', 'does not exist']),
    Case('zero-byte-image',
         lambda tmp: first_image(folder_with(tmp, '0_empty.png', b'')),
         BadImageError, ['0_empty.png', 'Cannot load']),
    Case('non-image-file-with-image-extension',
         lambda tmp: first_image(folder_with(tmp, '0_text.jpg',
                                             b'just some text\n')),
         BadImageError, ['0_text.jpg', 'Cannot load']),
    Case('truncated-image',
         lambda tmp: first_image(folder_with(tmp, '0_cut.jpg',
                                             truncated_jpeg())),
         BadImageError, ['0_cut.jpg', 'Cannot load']),
    Case('skipped-bad-image-warns-naming-it',
         skipped_image_warning,
         UserWarning, ['b_empty.png', 'skipped']),
    # Checkpoints.
    Case('checkpoint-of-another-architecture',
         lambda tmp: init_tokenizer(dict(model=tiny_model()), save_weights(
             tiny_tokenizer(quantizer=dual_quantizer()), tmp / 'fq2.pth')),
         KeyError, ['fq2.pth', 'does not match the model ImageTokenizer',
                    r'missing keys \[.*quantizer\.embedding\.weight',
                    r'unexpected keys \[.*quantizer\.subs\.0\.embedding',
                    r'post_quant_conv\.weight \[8, 8, 1, 1\] vs \[8, 4, 1, 1\]']),
    Case('checkpoint-with-another-codebook-size',
         lambda tmp: init_tokenizer(dict(model=tiny_model()), save_weights(
             tiny_tokenizer(quantizer=dict(type='VectorQuantizer',
                                           codebook_size=64, embed_dim=4)),
             tmp / 'k64.pth')),
         KeyError, ['k64.pth', '0 missing keys', '0 unexpected keys',
                    r'quantizer\.embedding\.weight \[64, 4\] vs \[32, 4\]']),
    Case('file-that-is-not-a-checkpoint',
         lambda tmp: init_tokenizer(dict(model=tiny_model()),
                                    write_png(tmp / 'photo.png')),
         ValueError, ['photo.png', 'not a PyTorch checkpoint']),
    Case('truncated-checkpoint',
         lambda tmp: safe_load(truncated_checkpoint(tmp)),
         ValueError, ['half.pth', 'not a PyTorch checkpoint',
                      'truncated']),
    Case('zero-byte-checkpoint',
         lambda tmp: safe_load(subfolder(tmp, '.', {'empty.pth': b''})
                               / 'empty.pth'),
         ValueError, ['empty.pth', 'not a PyTorch checkpoint']),
    Case('missing-checkpoint',
         lambda tmp: init_tokenizer(dict(model=tiny_model()),
                                    tmp / 'iter_9.pth'),
         FileNotFoundError, ['Checkpoint not found', 'iter_9.pth']),
    # Command lines.
    Case('resume-path-that-does-not-exist',
         lambda tmp: train_tool_args('configs/vq/vqgan_tiny.py', '--resume',
                                     str(tmp / 'gone' / 'iter_4.pth')),
         ToolFailed, ['exit 2', r'--resume .*gone/iter_4\.pth',
                      'no such checkpoint file']),
]


def message_of(error: BaseException) -> str:
    """The message as a user reads it (``KeyError`` quotes its argument)."""
    if isinstance(error, KeyError) and len(error.args) == 1:
        return str(error.args[0])
    return str(error)


@pytest.mark.parametrize('case', CASES, ids=[case.id for case in CASES])
def test_bad_input_named_in_one_line(case: Case, tmp_path: Path):
    with pytest.raises(case.error) as info:
        case.trigger(tmp_path)
    message = message_of(info.value)
    assert message and '\n' not in message.strip(), message
    for fragment in case.fragments:
        assert re.search(fragment, message), (
            f'{fragment!r} not in the message: {message}')


def test_case_ids_are_unique():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


REFUSALS = [case for case in CASES if issubclass(case.error, InputError)]


@pytest.mark.parametrize('case', REFUSALS, ids=[c.id for c in REFUSALS])
def test_refusal_is_one_error_line_and_exit_2(case: Case, tmp_path: Path,
                                              monkeypatch, capsys):
    """What a tool run under ``exit_on_input_error`` prints for it."""
    with pytest.raises(InputError) as info:
        case.trigger(tmp_path)
    assert isinstance(info.value, case.error)
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        with exit_on_input_error():
            case.trigger(tmp_path)
    assert exit_.value.code == 2
    assert capsys.readouterr().err == f'error: {message_of(info.value)}\n'


# ------------------------------------------ quantizer sizes, by their message
def vq_config(**overrides) -> dict:
    return dict(dict(type='VectorQuantizer', codebook_size=8, embed_dim=4,
                     l2_norm=False), **overrides)


# Every quantizer fqzoo registers: a small config that builds, and its size
# arguments, which must be positive integers (FSQ's levels are checked
# element by element below). Setting any one of them to 1 still builds.
SIZES = {
    'VectorQuantizer': (dict(codebook_size=8, embed_dim=4),
                        ('codebook_size', 'embed_dim')),
    'SimVQ': (dict(codebook_size=8, embed_dim=4),
              ('codebook_size', 'embed_dim')),
    'IndexBackpropQuantizer': (dict(codebook_size=8, embed_dim=4),
                               ('codebook_size', 'embed_dim')),
    'LookupFreeQuantizer': (dict(embed_dim=4, entropy_groups=1),
                            ('embed_dim', 'entropy_groups')),
    'BSQ': (dict(embed_dim=4), ('embed_dim',)),
    'FactorizedQuantizer': (dict(num_codebooks=2, quantizer=vq_config()),
                            ('num_codebooks',)),
    'ResidualVQ': (dict(depth=2, quantizer=vq_config()), ('depth',)),
    'FSQ': (dict(levels=(5, 4, 3)), ()),
}
# Counts that are not sizes of the quantizer (step counts, iterations,
# blocks) but must be positive integers as well.
COUNTS = {
    'VectorQuantizer': ('stats_window', 'dead_code_steps', 'kmeans_iters'),
    'SimVQ': ('stats_window',),
    'IndexBackpropQuantizer': ('stats_window', 'block_size'),
    'LookupFreeQuantizer': ('stats_window',),
    'BSQ': ('stats_window',),
    'FSQ': ('stats_window',),
}
NOT_POSITIVE_INTEGERS = [0, -1, 2.5, 4.0, True, '8', None]
SIZE_CASES = [(name, argument, value) for name, (_, arguments) in
              SIZES.items()
              for argument in arguments + COUNTS.get(name, ())
              for value in NOT_POSITIVE_INTEGERS]


def fqzoo_quantizers() -> set:
    """Every quantizer name fqzoo registers (test plugins excluded)."""
    QUANTIZERS.import_from_location()
    return {name for name, cls in QUANTIZERS.module_dict.items()
            if cls.__module__.startswith('fqzoo.')}


def build_quantizer(name: str, **overrides):
    return QUANTIZERS.build(dict(type=name, **dict(SIZES[name][0],
                                                   **overrides)))


def refusal(name: str, **overrides) -> str:
    """The message of the InputError building ``name`` with ``overrides``
    raises (failing if it raises none or another exception)."""
    with pytest.raises(InputError) as info:
        build_quantizer(name, **overrides)
    return str(info.value)


def test_every_registered_quantizer_has_its_sizes_listed():
    assert set(SIZES) == fqzoo_quantizers()


@pytest.mark.parametrize('name,argument,value', SIZE_CASES)
def test_size_that_is_not_a_positive_integer_is_refused(name, argument,
                                                         value):
    assert refusal(name, **{argument: value}) == (
        f'{name}: {argument} must be a positive integer, got {value!r}')


@pytest.mark.parametrize('name', sorted(SIZES))
def test_small_sizes_build(name):
    """The check does not fire too eagerly: the small config and each size
    set to 1 build, with the sizes asked for."""
    config, arguments = SIZES[name]
    quantizer = build_quantizer(name)
    for argument in arguments:
        assert getattr(quantizer, argument) == config[argument]
        build_quantizer(name, **{argument: 1})
    for argument in COUNTS.get(name, ()):
        build_quantizer(name, **{argument: 1})


@pytest.mark.parametrize('outer', ['FactorizedQuantizer', 'ResidualVQ'])
def test_bad_size_of_a_nested_quantizer_names_the_nested_one(outer):
    assert refusal(outer, quantizer=vq_config(embed_dim=-1)) == (
        'VectorQuantizer: embed_dim must be a positive integer, got -1')


@pytest.mark.parametrize('levels,message', [
    ((5, 0, 3), 'levels[1] must be a positive integer, got 0'),
    ((5, 4.5, 3), 'levels[1] must be a positive integer, got 4.5'),
    ((5, 4, '3'), "levels[2] must be a positive integer, got '3'"),
    ((), 'levels must be a non-empty sequence of integers, got ()'),
    (8, 'levels must be a non-empty sequence of integers, got 8'),
])
def test_fsq_levels_that_are_not_integers_are_refused(levels, message):
    assert refusal('FSQ', levels=levels) == f'FSQ: {message}'


def test_fsq_levels_below_three_and_lfq_groups_are_refusals():
    assert refusal('FSQ', levels=(5, 2)).startswith(
        'FSQ level 2 in levels=(5, 2): every level must be at least 3')
    assert refusal('LookupFreeQuantizer', embed_dim=5, entropy_groups=2) == (
        'LookupFreeQuantizer: embed_dim 5 is not divisible by '
        'entropy_groups 2')
    fsq = build_quantizer('FSQ', levels=[3, 4])
    assert (fsq.codebook_size, fsq.embed_dim) == (12, 2)


# -------------------------------------------------- good input still works
def test_valid_indices_decode_as_their_codes():
    tok = tiny_tokenizer()
    indices = torch.tensor([[[[0, 31], [7, 12]]]])
    codes = tok.quantizer.codebook()[indices[0, 0]].permute(2, 0, 1)[None]
    with torch.no_grad():
        expected = tok.decode_quantized(codes)
    assert torch.allclose(tok.decode(indices), expected, atol=1e-5)


def test_existing_resume_path_is_accepted(tmp_path: Path):
    ckpt = save_weights(torch.nn.Linear(1, 1), tmp_path / 'iter_2.pth')
    args = train_tool_args('configs/vq/vqgan_tiny.py', '--resume', str(ckpt))
    assert args.resume == str(ckpt)
    assert train_tool_args('configs/vq/vqgan_tiny.py',
                           '--resume').resume == 'auto'


def test_checkpoint_of_the_same_architecture_loads(tmp_path: Path):
    source = tiny_tokenizer()
    with torch.no_grad():
        source.quantizer.embedding.weight.mul_(3)
    ckpt = save_weights(source, tmp_path / 'same.pth')
    loaded = init_tokenizer(dict(model=tiny_model()), ckpt)
    assert torch.equal(loaded.quantizer.embedding.weight,
                       source.quantizer.embedding.weight)


# ------------------------------------------- images converted to RGB, by value
def test_grayscale_image_becomes_three_equal_channels(tmp_path: Path):
    gray = np.array([[0, 51], [102, 255]], np.uint8)
    Image.fromarray(gray, 'L').save(tmp_path / 'gray.png')
    image = first_image(tmp_path)['inputs']
    expected = torch.from_numpy(gray).float() / 127.5 - 1
    assert image.shape == (3, 2, 2)
    for channel in image:
        assert torch.allclose(channel, expected)


def test_rgba_image_keeps_its_colours_and_drops_alpha(tmp_path: Path):
    rgba = np.array([[[10, 200, 30, 0], [255, 0, 128, 255]]], np.uint8)
    Image.fromarray(rgba, 'RGBA').save(tmp_path / 'rgba.png')
    image = first_image(tmp_path)['inputs']
    expected = torch.from_numpy(rgba[..., :3]).float().permute(2, 0, 1)
    assert image.shape == (3, 1, 2)
    assert torch.allclose(image, expected / 127.5 - 1)
