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
    # Configs: unknown types and misspelt arguments.
    Case('unknown-quantizer-type',
         lambda tmp: QUANTIZERS.build(dict(type='VectorQuantiser')),
         KeyError, ['Unknown quantizer type "VectorQuantiser"',
                    'Known quantizer types: .*VectorQuantizer',
                    'FactorizedQuantizer']),
    Case('unknown-encoder-type-in-config',
         lambda tmp: init_tokenizer(dict(model=tiny_model(
             encoder=dict(type='VQGANEncodr')))),
         KeyError, ['Unknown model type "VQGANEncodr"', 'VQGANEncoder']),
    Case('unknown-model-type-via-runner',
         lambda tmp: runner_build_model(dict(type='ImageTokeniser')),
         KeyError, ['Unknown model type "ImageTokeniser"', 'ImageTokenizer']),
    Case('unknown-teacher-type',
         lambda tmp: tiny_tokenizer(
             quantizer=dual_quantizer(),
             regularizers=[dict(semantic(1), teacher=dict(type='CLIPTeachr'))]),
         KeyError, ['Unknown teacher type "CLIPTeachr"', 'EfficientNetTeacher']),
    Case('misspelt-quantizer-argument',
         lambda tmp: tiny_tokenizer(quantizer=dict(
             type='VectorQuantizer', codebok_size=32, embed_dim=4)),
         TypeError, ['VectorQuantizer', 'unknown argument.*codebok_size',
                     'Accepted arguments: codebook_size, embed_dim']),
    Case('misspelt-nested-sub-quantizer-argument',
         lambda tmp: QUANTIZERS.build(dict(
             type='FactorizedQuantizer', quantizer=dict(
                 type='VectorQuantizer', codebook_size=8, embed_dim=4,
                 l2norm=True))),
         TypeError, ['VectorQuantizer', 'l2norm', 'Accepted.*l2_norm']),
    Case('misspelt-model-argument-via-runner',
         lambda tmp: runner_build_model(tiny_model(disc_strat=100)),
         TypeError, ['ImageTokenizer', 'disc_strat', 'Accepted.*disc_start']),
    Case('misspelt-dataset-argument',
         lambda tmp: DATASETS.build(dict(
             type='ImageFolderDataset', data_root=str(tmp),
             skip_bad_file=True)),
         TypeError, ['ImageFolderDataset', 'skip_bad_file\\b',
                     'Accepted.*skip_bad_files']),
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
