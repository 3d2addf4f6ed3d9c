"""The model zoo's details, pinned by hand-worked values: the index it
reads, what it hands ``hf_hub_download`` (a recording stand-in, never the
network), every word of its error messages, the conversion options and
defaults (mutation run)."""
import hashlib
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from huggingface_hub import constants
from mmengine.config import Config
from safetensors.torch import save_file
from test_zoo import TINY_TOKENIZER, TOK_META, write_index
from torch import nn

from fqzoo.apis.zoo import (
    HashMismatchError,
    ModelInfo,
    WeightsUnavailableError,
    check_sha256,
    conversion_options,
    convert_to_fqzoo,
    hub_file,
    list_models,
    recorded_layout,
)
from fqzoo.converters import detect_and_convert
from fqzoo.utils.token_layout import layout_meta

HUB_WEIGHTS = {'repo_id': 'org/tiny', 'filename': 'tok.pth',
               'revision': None, 'sha256': None}


def hub_info(**weights) -> ModelInfo:
    return ModelInfo(name='tiny', collection='Tiny', config=Path('tiny.py'),
                     weights=dict(HUB_WEIGHTS, **weights))


class FakeHub:
    """Stands in for ``huggingface_hub.hf_hub_download``: records each
    call, returns ``/cache/<filename>`` or raises ``error``."""

    def __init__(self):
        self.calls = []
        self.error = None

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        if self.error is not None:
            raise self.error
        return f'/cache/{args[1]}'


@pytest.fixture
def hub(monkeypatch):
    """A FakeHub in place of the download, online by default: no
    ``$HF_HUB_OFFLINE``, ``$HF_HUB_CACHE``, hub offline constant off."""
    import huggingface_hub
    fake = FakeHub()
    monkeypatch.setattr(huggingface_hub, 'hf_hub_download', fake)
    monkeypatch.setattr(constants, 'HF_HUB_OFFLINE', False)
    monkeypatch.delenv('HF_HUB_OFFLINE', raising=False)
    monkeypatch.delenv('HF_HUB_CACHE', raising=False)
    return fake


def test_list_models_reads_the_index_it_is_given(tmp_path):
    index = write_index(tmp_path, [
        dict(name=name, config=TINY_TOKENIZER, metadata=TOK_META)
        for name in ('tiny_b', 'Tiny_A', 'other')])
    assert list_models(index=index) == ['Tiny_A', 'other', 'tiny_b']
    assert list_models('TINY*', index=index) == ['Tiny_A', 'tiny_b']


@pytest.mark.parametrize('value,expected', [
    (' Yes ', True), ('ON', True), ('1', True), ('true', True),
    ('0', False), ('off', False), ('', False), (None, False)])
def test_hub_offline_env_words(hub, monkeypatch, value, expected):
    """``$HF_HUB_OFFLINE`` as the hub reads it: 1/on/true/yes in any case
    and padding is offline, anything else (or unset) is not."""
    if value is not None:
        monkeypatch.setenv('HF_HUB_OFFLINE', value)
    assert hub_file(hub_info()) == Path('/cache/tok.pth')
    assert hub.calls == [(('org/tiny', 'tok.pth'), dict(
        revision=None, cache_dir=None, local_files_only=expected))]


def test_hub_offline_constant_alone_is_offline(hub, monkeypatch):
    monkeypatch.setattr(constants, 'HF_HUB_OFFLINE', True)
    hub_file(hub_info())
    assert hub.calls[0][1]['local_files_only'] is True


def test_hub_offline_env_alone_is_offline(hub, monkeypatch):
    """The environment says offline though the hub's constant (read at its
    import) does not."""
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    hub_file(hub_info())
    assert hub.calls[0][1]['local_files_only'] is True


def test_hub_unreachable_online_message(hub):
    hub.error = OSError('no network')
    with pytest.raises(WeightsUnavailableError) as err:
        hub_file(hub_info(), local_files_only=False)
    assert str(err.value) == (
        'tiny: the weights file tok.pth of the Hugging Face Hub repo '
        'org/tiny (revision main) is not in the cache or on the Hub: '
        'OSError: no network. Download it where the network is '
        '(huggingface-cli download org/tiny tok.pth, then copy the cache '
        'or the file) and pass the file: '
        "get_model('tiny', pretrained='/path/to/tok.pth')")


def test_hub_not_cached_offline_message(hub):
    hub.error = ValueError('bad revision')
    with pytest.raises(WeightsUnavailableError) as err:
        hub_file(hub_info(revision='v1'), local_files_only=True)
    assert str(err.value) == (
        'tiny: the weights file tok.pth of the Hugging Face Hub repo '
        'org/tiny (revision v1) is not in the local Hugging Face cache '
        '(offline mode): ValueError: bad revision. Download it where the '
        'network is (huggingface-cli download org/tiny tok.pth, then copy '
        'the cache or the file) and pass the file: '
        "get_model('tiny', pretrained='/path/to/tok.pth')")


ABC_SHA256 = hashlib.sha256(b'abc').hexdigest()


def test_hash_mismatch_message(tmp_path):
    path = tmp_path / 'w.pth'
    path.write_bytes(b'abc')
    other = 'AB' * 32
    with pytest.raises(HashMismatchError) as err:
        check_sha256(path, other, 'tiny')
    assert str(err.value) == (
        f'{path} is not the weights file of tiny: sha256 expected '
        f'{other.lower()} (model index), found {ABC_SHA256}. A damaged '
        'download (delete it from the cache and fetch again) or another '
        'file (pass check_hash=False to load it anyway)')
    assert check_sha256(path, ABC_SHA256.upper(), 'tiny') == ABC_SHA256
    assert check_sha256(path, None, 'tiny') == ABC_SHA256


class Gridded(nn.Module):
    """A model with a non-square token grid, as the GPTs keep it."""

    def __init__(self):
        super().__init__()
        self.grid_size = (3, 5)


def test_conversion_options_take_heads_from_config_grid_from_model():
    config = Config(dict(model=dict(backbone=dict(num_heads='4'))))
    options = conversion_options(Gridded(), config)
    assert options.pop('config') is config
    assert options == dict(num_heads=4, grid_size=3)
    bare = Config(dict(model=dict(type='ImageTokenizer')))
    assert conversion_options(nn.Linear(1, 1), bare) == dict(config=bare)


# --- convert_to_fqzoo and the layout a file records ---------------------


class FakeConverter:
    """Stands in for ``fqzoo.converters.detect_and_convert``: records the
    options, returns ``state_dict`` or raises ``error``."""

    def __init__(self, state_dict=None, error=None):
        self.state_dict, self.error = state_dict, error
        self.options = None

    def __call__(self, state, **options):
        self.options = options
        if self.error is not None:
            raise self.error
        return SimpleNamespace(state_dict=self.state_dict)


def test_fqzoo_state_under_module_prefix_is_kept_as_it_is():
    """A DataParallel-saved fqzoo state (``module.`` keys) fits: no
    converter is asked (none knows this layout)."""
    model = nn.Linear(2, 2)
    state = {f'module.{k}': v for k, v in model.state_dict().items()}
    assert convert_to_fqzoo(state, model, 'src.pth') is state


def test_neither_layout_names_file_model_and_converter_reason():
    state = {'some.weight': torch.zeros(2)}
    with pytest.raises(KeyError) as raw:
        detect_and_convert(state)
    with pytest.raises(KeyError) as err:
        convert_to_fqzoo(state, nn.Linear(2, 2), 'other.pt')
    assert err.value.args == (
        'other.pt: neither fqzoo weights of Linear nor a released layout: '
        f'{raw.value.args[0]}',)


def test_converter_error_without_args(monkeypatch):
    monkeypatch.setattr('fqzoo.converters.detect_and_convert',
                        FakeConverter(error=ValueError()))
    with pytest.raises(ValueError) as err:
        convert_to_fqzoo({}, nn.Linear(2, 2), 'other.pt')
    assert err.value.args == (
        'other.pt: neither fqzoo weights of Linear nor a released layout: ',)


def test_converter_told_what_config_and_model_know(monkeypatch):
    converter = FakeConverter(state_dict={})
    monkeypatch.setattr('fqzoo.converters.detect_and_convert', converter)
    model = Gridded()
    model.weight = nn.Parameter(torch.zeros(1))
    config = Config(dict(model=dict(backbone=dict(num_heads=2))))
    convert_to_fqzoo({'w': torch.zeros(1)}, model, 'src.pt', config)
    assert converter.options.pop('config') is config
    assert converter.options == dict(num_heads=2, grid_size=3)
    convert_to_fqzoo({'w': torch.zeros(1)}, model, 'src.pt')
    assert converter.options == {}


def test_converted_state_keeps_only_the_models_missing_buffers(monkeypatch):
    """Buffers the release lacks come from the model; a parameter it
    lacks stays missing (for the key check to report), never the model's
    random value."""
    model = nn.BatchNorm1d(2)
    model.running_var.fill_(7.0)
    weight, mean = torch.full((2,), 3.0), torch.full((2,), 5.0)
    converter = FakeConverter(state_dict={'weight': weight,
                                          'running_mean': mean})
    monkeypatch.setattr('fqzoo.converters.detect_and_convert', converter)
    state = convert_to_fqzoo({'w': torch.zeros(1)}, model, 'src.pt')
    assert sorted(state) == ['num_batches_tracked', 'running_mean',
                             'running_var', 'weight']
    assert state['weight'] is weight and state['running_mean'] is mean
    assert torch.equal(state['running_var'], torch.full((2,), 7.0))


LAYOUT = {'codebook_sizes': [32], 'grid': [8, 8]}


def test_recorded_layout_of_a_checkpoint(tmp_path):
    path = tmp_path / 'ckpt.pth'
    path.write_bytes(b'a torch file, given loaded')
    assert recorded_layout({'meta': {'token_layout': LAYOUT}}, path) == LAYOUT
    for checkpoint in ({'meta': {'token_layout': 'grid'}}, {'meta': 3},
                       {'state_dict': {}}, [LAYOUT]):
        assert recorded_layout(checkpoint, path) is None


def test_recorded_layout_of_a_safetensors_file(tmp_path):
    path = tmp_path / 'w.safetensors'
    save_file({'w': torch.zeros(1)}, str(path), metadata=layout_meta(LAYOUT))
    assert recorded_layout({}, path) == LAYOUT
    save_file({'w': torch.zeros(1)}, str(path), metadata={'other': 'x'})
    assert recorded_layout({}, path) is None
