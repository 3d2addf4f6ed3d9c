"""The model zoo's details, pinned by hand-worked values: the index it
reads, what it hands ``hf_hub_download`` (a recording stand-in, never the
network), every word of its error messages, the conversion options and
defaults (mutation run)."""
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from huggingface_hub import constants
from mmengine.config import Config
from safetensors.torch import load_file, save_file
from test_zoo import REPO, TINY_TOKENIZER, TOK_META, sha256, write_index
from torch import nn

from fqzoo.apis import get_model, init_generator, init_tokenizer
from fqzoo.apis.zoo import (
    HashMismatchError,
    ModelInfo,
    WeightsUnavailableError,
    build_config,
    build_model,
    built_layout,
    check_sha256,
    conversion_options,
    convert_to_fqzoo,
    export_model,
    hub_file,
    image_sizes,
    index_path,
    list_models,
    load_index,
    load_weights,
    model_info,
    recorded_layout,
    resolve_weights,
)
from fqzoo.converters import detect_and_convert
from fqzoo.utils.checkpoint import safetensors_metadata
from fqzoo.utils.token_layout import layout_meta

HUB_WEIGHTS = {'repo_id': 'org/tiny', 'filename': 'tok.pth',
               'revision': None, 'sha256': None}


def hub_info(**weights) -> ModelInfo:
    return ModelInfo(name='tiny', collection='Tiny', config=Path('tiny.py'),
                     weights=dict(HUB_WEIGHTS, **weights))


class FakeHub:
    """Stands in for ``huggingface_hub.hf_hub_download``: records each
    call, returns ``path`` (default ``/cache/<filename>``) or raises
    ``error``."""

    def __init__(self):
        self.calls = []
        self.error = self.path = None

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        if self.error is not None:
            raise self.error
        return self.path or f'/cache/{args[1]}'


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


# --- load_weights: the layout check, the entry, the keys ----------------


@pytest.fixture(scope='module')
def tok_files(tmp_path_factory):
    """``(config file, {name: weights file})``: a tiny tokenizer's config
    and checkpoints of its weights (seeded, not the init), ``layout``
    recording a 4x4 grid at 16 px where the model has 8x8, ``training``
    with the discriminator and perceptual-loss keys a training run saves,
    ``no_entry`` holding only ``meta``, ``extra`` with a key too many."""
    root = tmp_path_factory.mktemp('tok')
    config = root / 'tiny_tok.py'
    config.write_text(TINY_TOKENIZER)
    torch.manual_seed(3)
    state = {k: torch.randn_like(v) if v.is_floating_point() else v
             for k, v in init_tokenizer(config).state_dict().items()}
    layout = dict(built_layout(init_tokenizer(config), [16]),
                  grids={'16x16': [4, 4]})
    checkpoints = dict(
        plain={'state_dict': state},
        layout={'state_dict': state, 'meta': {'token_layout': layout}},
        training={'state_dict': dict(state, **{
            'discriminator.conv.weight': torch.zeros(2),
            'perceptual_loss.net.weight': torch.zeros(2)})},
        no_entry={'meta': {'iter': 1}},
        extra={'state_dict': dict(state, **{'extra.w': torch.zeros(1)})})
    files = {}
    for name, checkpoint in checkpoints.items():
        files[name] = root / f'{name}.pth'
        torch.save(checkpoint, files[name])
    return config, files


def loaded_equal(model, path) -> bool:
    state = torch.load(path)['state_dict']
    return all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize('how', ['none', 'unnamed', 'file'])
def test_layout_recorded_in_a_checkpoint_is_checked(tok_files, how):
    """The grid no tensor shows, read from a ``.pth``'s ``meta`` and
    compared at the given image size; the model named by its config file,
    else as 'its config'."""
    config, files = tok_files
    path = files['layout']
    given = dict(none=None, unnamed=Config(dict(model={})),
                 file=Config.fromfile(str(config)))[how]
    model_name = f'the model of {config}' if how == 'file' else \
        'the model of its config'
    with pytest.raises(ValueError) as err:
        load_weights(init_tokenizer(config), path, given, [16])
    assert str(err.value) == (
        f'{path} and {model_name} do not belong together: their token '
        f'layouts differ (grid at 16x16 [4, 4] in {path}, [8, 8] in '
        f'{model_name})')


def test_weights_load_with_and_without_a_config(tok_files):
    config, files = tok_files
    for given in (None, Config.fromfile(str(config))):
        model = load_weights(init_tokenizer(config), files['plain'], given,
                             [16])
        assert loaded_equal(model, files['plain'])


def test_tokenizer_file_with_training_parts_loads(tok_files):
    config, files = tok_files
    model = load_weights(init_tokenizer(config), files['training'])
    assert loaded_equal(model, files['plain'])


def test_file_without_weights_is_named(tok_files):
    config, files = tok_files
    path = files['no_entry']
    with pytest.raises(KeyError) as err:
        load_weights(init_tokenizer(config), path)
    assert err.value.args == (f"{path} has no model / module / state_dict "
                              "entry of weights (entries: ['meta'])",)


def test_key_too_many_names_the_file(tok_files):
    config, files = tok_files
    path = files['extra']
    with pytest.raises(KeyError) as err:
        load_weights(init_tokenizer(config), path)
    assert err.value.args[0].startswith(
        f'{path} does not match the model ImageTokenizer (another '
        "architecture or config?): 0 missing keys [], 1 unexpected keys "
        "['extra.w']")


TINY_GPT_CONFIG = dict(
    type='AutoregressiveGenerator', num_classes=5, grid_size=[4, 4],
    codebook_sizes=[24], tokens=None,
    backbone=dict(type='LlamaGenBackbone', width=32, num_layers=2,
                  num_heads=4, ffn_hidden_dim=96),
    head=dict(type='ParallelLinearHead'))


def test_generator_file_with_a_discriminator_key_is_refused(tmp_path):
    """Only tokenizers drop training-only parts: a generator has none, so
    such a key means another model's file."""
    model = init_generator(dict(model=TINY_GPT_CONFIG))
    path = tmp_path / 'gpt.pth'
    torch.save({'state_dict': dict(model.state_dict(), **{
        'discriminator.w': torch.zeros(1)})}, path)
    with pytest.raises(KeyError, match=r"1 unexpected keys "
                       r"\['discriminator.w'\]"):
        load_weights(model, path)


def test_get_model_hands_hub_options_on_and_moves_to_device(hub, tok_files,
                                                            tmp_path):
    config, files = tok_files
    hub.path = str(files['plain'])
    index = write_index(tmp_path, [dict(name='tiny_tok',
                                        config=TINY_TOKENIZER,
                                        metadata=TOK_META,
                                        weights=HUB_WEIGHTS)])
    model = get_model('tiny_tok', device='meta', cache_dir=tmp_path / 'hub',
                      local_files_only=True, index=index)
    assert hub.calls == [(('org/tiny', 'tok.pth'), dict(
        revision=None, cache_dir=tmp_path / 'hub', local_files_only=True))]
    assert {p.device.type for p in model.parameters()} == {'meta'}
    assert not model.training


TOK_LAYOUT = {'codebook_sizes': [32], 'sub_tokens': ['pixel'],
              'downsample_factor': 2, 'grids': {'16x16': [8, 8]}}


def test_export_model_options_and_metadata(hub, tok_files, tmp_path):
    """export_model hands revision, hash check and hub options to the
    loading, creates the nested folder and records name, layout and the
    source file's sha256."""
    _, files = tok_files
    good, other = files['plain'], files['training']
    index = write_index(tmp_path, [dict(
        name='tiny_tok', config=TINY_TOKENIZER, metadata=TOK_META,
        weights=dict(HUB_WEIGHTS, sha256=sha256(good)))])
    out, cache = tmp_path / 'out' / 'zoo', tmp_path / 'hub'
    hub.path = str(good)
    _, weights = export_model('tiny_tok', out, cache_dir=cache,
                              local_files_only=True, index=index)
    assert hub.calls == [(('org/tiny', 'tok.pth'), dict(
        revision=None, cache_dir=cache, local_files_only=True))]
    meta = safetensors_metadata(weights)
    assert json.loads(meta.pop('token_layout')) == TOK_LAYOUT
    assert meta == dict(fqzoo_model='tiny_tok', source_sha256=sha256(good))
    state = torch.load(good)['state_dict']
    exported = load_file(str(weights))
    assert all(torch.equal(exported[k], state[k]) for k in state)
    hub.path = str(other)
    with pytest.raises(HashMismatchError):
        export_model('tiny_tok', out, index=index)
    export_model('tiny_tok', out, revision='v1', index=index)
    assert hub.calls[-1][1]['revision'] == 'v1'
    _, weights = export_model('tiny_tok', out, pretrained=False, index=index)
    assert safetensors_metadata(weights)['source_sha256'] == ''


# --- a generator's token layout from the index --------------------------


def gpt_info(tmp_path, metadata, **model) -> ModelInfo:
    config = tmp_path / 'tiny_gpt.py'
    config.write_text(f'model = {dict(TINY_GPT_CONFIG, **model)!r}\n')
    return ModelInfo(name='tiny_gpt', collection='Tiny', config=config,
                     metadata=metadata, metafile=tmp_path / 'metafile.yml')


@pytest.mark.parametrize('missing', ['Token Grid', 'Codebooks'])
def test_generator_without_index_layout_names_metafile_and_model(tmp_path,
                                                                 missing):
    metadata = {'Token Grid': [4, 4], 'Codebooks': [24]}
    del metadata[missing]
    info = gpt_info(tmp_path, metadata)
    with pytest.raises(KeyError) as err:
        build_config(info)
    assert err.value.args == (f'{tmp_path / "metafile.yml"}: generator '
                              "'tiny_gpt' needs Metadata \"Token Grid\" and "
                              '"Codebooks"',)


def test_generator_config_disagreeing_with_the_index_is_named(tmp_path):
    info = gpt_info(tmp_path, {'Token Grid': [8, 8], 'Codebooks': [24]})
    with pytest.raises(ValueError) as err:
        build_config(info)
    assert str(err.value) == (f'tiny_gpt: {info.config} sets grid_size=[4, '
                              '4], the model index [8, 8]')
    info = gpt_info(tmp_path, {'Token Grid': (8, 8), 'Codebooks': (24,)},
                    grid_size=None, codebook_sizes=[24], tokens='codes/')
    model = build_config(info).model
    assert (model.grid_size, model.codebook_sizes, model.tokens) == (
        [8, 8], [24], None)


def test_image_sizes_from_the_index():
    info = ModelInfo(name='m', collection='C', config=Path('m.py'))
    assert image_sizes(info) == []
    info.metadata['Image Size'] = '256'
    assert image_sizes(info) == [256]


def test_resolve_weights_defaults_to_the_checked_release(tok_files):
    """``pretrained=True`` and ``check_hash=True`` by default: the index's
    file, and another file refused."""
    _, files = tok_files
    good, other = files['plain'], files['training']
    info = ModelInfo(name='tiny_tok', collection='Tiny', config=Path('t.py'),
                     weights={'path': good, 'sha256': sha256(good),
                              'revision': None})
    assert resolve_weights(info) == good
    with pytest.raises(HashMismatchError):
        resolve_weights(info, other)
    assert resolve_weights(info, other, check_hash=False) == other


def test_no_release_message_says_how_to_go_on():
    info = ModelInfo(name='far_x', collection='FAR', config=Path('far_x.py'),
                     note='nothing released')
    assert resolve_weights(info, False) is None
    with pytest.raises(WeightsUnavailableError) as err:
        resolve_weights(info)
    assert str(err.value) == (
        'far_x has no released weights (nothing released). Train it with '
        "far_x.py and pass the checkpoint: get_model('far_x', "
        "pretrained='/path/to/ckpt'), or pretrained=False for random "
        'weights')


def test_missing_files_are_named(tmp_path):
    shipped = tmp_path / 'ship' / 'tok.pth'
    info = ModelInfo(name='tiny', collection='Tiny', config=Path('t.py'),
                     weights={'path': shipped, 'sha256': None,
                              'revision': None})
    with pytest.raises(WeightsUnavailableError) as err:
        resolve_weights(info)
    assert str(err.value) == (
        f'tiny: its shipped weights file {shipped} is missing (a checkout '
        "without it?): pass another copy as get_model('tiny', "
        "pretrained='/path/to/tok.pth')")
    with pytest.raises(FileNotFoundError) as err:
        resolve_weights(info, str(tmp_path / 'nope.pth'))
    assert str(err.value) == (f'tiny: weights file not found: '
                              f'{tmp_path / "nope.pth"}')


def test_resolve_weights_hands_hub_options_on(hub, tmp_path):
    hub.path = str(tmp_path / 'tok.pth')
    (tmp_path / 'tok.pth').write_bytes(b'abc')
    info = hub_info(revision='r1', sha256=ABC_SHA256)
    assert resolve_weights(info, revision='r2', cache_dir=tmp_path / 'hub',
                           local_files_only=True) == tmp_path / 'tok.pth'
    assert hub.calls == [(('org/tiny', 'tok.pth'), dict(
        revision='r2', cache_dir=tmp_path / 'hub', local_files_only=True))]


@pytest.mark.parametrize('revision,checked', [
    (None, True), ('r1', True), ('r2', False)])
def test_hash_checked_for_the_indexs_revision_only(hub, tmp_path, revision,
                                                   checked):
    """The index's sha256 belongs to its revision: another revision's file
    (or ``check_hash=False``) is not compared."""
    hub.path = str(tmp_path / 'tok.pth')
    (tmp_path / 'tok.pth').write_bytes(b'abc')
    info = hub_info(revision='r1', sha256='0' * 64)
    if checked:
        with pytest.raises(HashMismatchError,
                           match='is not the weights file of tiny: sha256'):
            resolve_weights(info, revision=revision)
    else:
        assert resolve_weights(info, revision=revision) == tmp_path / 'tok.pth'
    assert resolve_weights(info, revision=revision, check_hash=False) == \
        tmp_path / 'tok.pth'
    assert resolve_weights(info, str(tmp_path / 'tok.pth'), revision,
                           check_hash=False) == tmp_path / 'tok.pth'


def test_local_file_of_a_model_without_release_is_not_checked(tmp_path):
    path = tmp_path / 'ckpt.pth'
    path.write_bytes(b'abc')
    info = ModelInfo(name='far_x', collection='FAR', config=Path('far_x.py'),
                     note='nothing released')
    assert resolve_weights(info, path) == path


# --- reading the index ---------------------------------------------------


def index_of(root: Path, *metafiles) -> Path:
    """``root/model-index.yml`` importing ``m0.yml``, ``m1.yml`` ... with
    the ``Models`` lists given."""
    names = []
    for i, models in enumerate(metafiles):
        names.append(f'sub/m{i}.yml')
        (root / 'sub').mkdir(exist_ok=True)
        (root / names[-1]).write_text(yaml.safe_dump(dict(Models=models)))
    index = root / 'model-index.yml'
    index.write_text(yaml.safe_dump(dict(Import=names)))
    return index


FULL = {'Name': 'full', 'In Collection': 'Tiny', 'Config': 'configs/full.py',
        'Metadata': {'Parameters': 7}, 'Results': [{'Task': 'x'}],
        'Weights': {'repo_id': 'org/full', 'filename': 'full.pth',
                    'revision': 'r1'},
        'Note': 'a note', 'Converted From': {'Code': 'https://x'}}


def test_index_entry_fields(tmp_path):
    shipped = dict(FULL, Name='shipped', Weights={'path': 'w/s.pth'})
    bare = {'Name': 'bare', 'In Collection': 'Tiny', 'Config': 'b.py',
            'Weights': None, 'Note': 'nothing released'}
    index = index_of(tmp_path, [FULL, shipped], [bare])
    models = load_index(index)
    assert list(models) == ['full', 'shipped', 'bare']
    assert models['full'] == ModelInfo(
        name='full', collection='Tiny', config=tmp_path / 'configs/full.py',
        metadata={'Parameters': 7}, results=[{'Task': 'x'}],
        weights={'repo_id': 'org/full', 'filename': 'full.pth',
                 'revision': 'r1', 'sha256': None},
        note='a note', converted_from={'Code': 'https://x'},
        metafile=tmp_path / 'sub/m0.yml')
    assert models['shipped'].weights == {'path': tmp_path / 'w/s.pth',
                                         'revision': None, 'sha256': None}
    assert models['bare'] == ModelInfo(
        name='bare', collection='Tiny', config=tmp_path / 'b.py',
        weights=None, note='nothing released',
        metafile=tmp_path / 'sub/m1.yml')
    assert model_info('bare', index) == models['bare']


@pytest.mark.parametrize('key', ['Name', 'In Collection', 'Config',
                                 'Weights'])
def test_entry_without_a_required_key_is_named(tmp_path, key):
    entry = dict(FULL)
    del entry[key]
    index = index_of(tmp_path, [entry])
    name = '?' if key == 'Name' else 'full'
    with pytest.raises(KeyError) as err:
        load_index(index)
    assert err.value.args == (f"{tmp_path / 'sub/m0.yml'}: model {name!r} "
                              f'has no {key!r}',)


@pytest.mark.parametrize('weights,missing', [
    ({'filename': 'f.pth'}, 'repo_id'), ({'repo_id': 'org/x'}, 'filename'),
    ({'repo_id': '', 'filename': 'f.pth'}, 'repo_id'), ({}, 'repo_id')])
def test_weights_without_hub_reference_or_path(tmp_path, weights, missing):
    index = index_of(tmp_path, [dict(FULL, Weights=weights)])
    with pytest.raises(KeyError) as err:
        load_index(index)
    assert err.value.args == (
        f"{tmp_path / 'sub/m0.yml'}: model 'full': Weights has no "
        f"{missing!r} (a Hub reference: repo_id, filename, revision, sha256; "
        'or a path in the repository)',)


@pytest.mark.parametrize('note', [None, ''])
def test_no_weights_needs_a_note(tmp_path, note):
    entry = dict(FULL, Weights=None, Note=note)
    index = index_of(tmp_path, [entry])
    with pytest.raises(KeyError) as err:
        load_index(index)
    assert err.value.args == (f"{tmp_path / 'sub/m0.yml'}: model 'full' has "
                              'no weights and no Note saying why',)


def test_one_name_in_two_metafiles(tmp_path):
    index = index_of(tmp_path, [FULL], [dict(FULL, Config='other.py')])
    with pytest.raises(KeyError) as err:
        load_index(index)
    assert err.value.args == (f"Model 'full' is in both "
                              f"{tmp_path / 'sub/m0.yml'} and "
                              f"{tmp_path / 'sub/m1.yml'}",)


def test_index_files_missing_empty_or_not_a_mapping(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_index(tmp_path / 'none.yml')
    assert str(err.value) == ('Model index file not found: '
                              f'{tmp_path / "none.yml"}')
    index = tmp_path / 'model-index.yml'
    index.write_text('')
    assert load_index(index) == {}
    index.write_text('Import:\n')
    assert load_index(index) == {}
    index.write_text('- a\n- b\n')
    with pytest.raises(ValueError) as err:
        load_index(index)
    assert str(err.value) == (f'{index}: expected a mapping at the top, got '
                              'list')
    index_of(tmp_path, None)
    assert load_index(index) == {}


def test_index_path_argument_then_environment_then_repository(
        monkeypatch, tmp_path):
    monkeypatch.delenv('FQZOO_MODEL_INDEX', raising=False)
    assert index_path() == REPO / 'model-index.yml'
    assert index_path(str(tmp_path / 'a.yml')) == tmp_path / 'a.yml'
    monkeypatch.setenv('FQZOO_MODEL_INDEX', str(tmp_path / 'env.yml'))
    assert index_path() == tmp_path / 'env.yml'
    assert index_path(tmp_path / 'a.yml') == tmp_path / 'a.yml'


def test_unknown_name_message(tmp_path):
    names = ['tiny_a', 'tiny_b', 'tiny_c', 'tiny_d', 'tiny_e', 'tiny_f',
             'other']
    index = index_of(tmp_path, [dict(FULL, Name=n) for n in names])
    with pytest.raises(KeyError) as err:
        model_info('tiny_x', index)
    # six names as close, five shown (difflib: equal scores, last first)
    assert err.value.args == (
        f"No model named 'tiny_x' in {index}; did you mean ['tiny_f', "
        "'tiny_e', 'tiny_d', 'tiny_c', 'tiny_b']? (list_models() gives all 7 "
        'names)',)
    with pytest.raises(KeyError) as err:
        model_info('zzz', index)
    assert err.value.args == (f"No model named 'zzz' in {index} "
                              '(list_models() gives all 7 names)',)


def test_get_model_checks_the_grid_at_the_indexs_image_size(tok_files,
                                                            tmp_path):
    """The index's Image Size (16) is where a tokenizer file's recorded
    grid is compared: 4x4 in the file, 8x8 in the model."""
    _, files = tok_files
    index = write_index(tmp_path, [dict(name='tiny_tok',
                                        config=TINY_TOKENIZER,
                                        metadata=TOK_META)])
    with pytest.raises(ValueError, match=r'grid at 16x16 \[4, 4\] in '):
        get_model('tiny_tok', files['layout'], index=index)


def test_build_model_device_and_given_config(tmp_path):
    gpt = gpt_info(tmp_path, {'Token Grid': [4, 4], 'Codebooks': [24]})
    generator = build_model(gpt, device='meta')
    assert hasattr(generator, 'generate')
    assert {p.device.type for p in generator.parameters()} == {'meta'}
    config = tmp_path / 'tok.py'
    config.write_text(TINY_TOKENIZER)
    info = ModelInfo(name='tok', collection='Tiny', config=config)
    tokenizer = build_model(info, device='meta')
    assert {p.device.type for p in tokenizer.parameters()} == {'meta'}
    assert tokenizer.discriminator is None
    given = Config.fromstring(TINY_TOKENIZER.replace('codebook_size=32',
                                                     'codebook_size=16'), '.py')
    assert build_model(info, config=given).quantizer.codebook_size == 16
    assert build_model(info).quantizer.codebook_size == 32
