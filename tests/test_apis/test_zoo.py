"""The model zoo: the index's entries build at their parameter counts, and
get_model loads weights from a local file, from a Hugging Face cache folder
(offline, revision-pinned) and from a released layout, checking hashes and
refusing to return random weights."""
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from mmengine.config import Config

from fqzoo.apis import get_model, init_generator, init_tokenizer, list_models
from fqzoo.apis.zoo import (
    HashMismatchError,
    WeightsUnavailableError,
    build_config,
    count_parameters,
    export_model,
    load_index,
    model_info,
)
from fqzoo.converters import convert_released, released_shapes
from fqzoo.models.generators.token_layout import layout_from_tokenizer
from fqzoo.utils.token_layout import checkpoint_layout

REPO = Path(__file__).resolve().parents[2]
INDEX = load_index()

TINY_TOKENIZER = """
model = dict(
    type='ImageTokenizer',
    encoder=dict(type='VQGANEncoder', ch=8, ch_mult=(1, 2),
                 num_res_blocks=1, z_channels=8),
    decoder=dict(type='VQGANDecoder', ch=8, ch_mult=(1, 2),
                 num_res_blocks=1, z_channels=8),
    quantizer=dict(type='VectorQuantizer', codebook_size=32, embed_dim=4),
    discriminator=dict(type='PatchGANDiscriminator', ndf=8, num_layers=2))
"""
# A LlamaGen-layout GPT at tiny sizes: the 4 heads (not in the tensors;
# the converter's default would be a released model's count) and the grid
# come from the config and the index.
TINY_GPT = """
model = dict(
    type='AutoregressiveGenerator', num_classes=5,
    backbone=dict(type='LlamaGenBackbone', width=32, num_layers=2,
                  num_heads=4, ffn_hidden_dim=96),
    head=dict(type='ParallelLinearHead'))
"""


def reported(text: str) -> float:
    """'111M' -> 111e6, '3.1B' -> 3.1e9."""
    return float(text[:-1]) * {'M': 1e6, 'B': 1e9}[text[-1]]


@pytest.mark.parametrize('name', sorted(INDEX))
def test_entry_builds_at_its_parameter_count(name):
    info = INDEX[name]
    assert info.config.is_file(), info.config
    meta = info.metadata
    count = count_parameters(info)
    assert count == meta['Parameters']
    if 'Reported Parameters' in meta:
        # the release's rounded figure (README / paper), within 1%
        assert abs(count / reported(meta['Reported Parameters']) - 1) < 0.01
    grid = [meta['Image Size'] // meta['Downsample']] * 2
    assert meta['Token Grid'] == grid
    config = build_config(info)
    if 'Tokenizer' in meta:  # a generator: its tokens are its tokenizer's
        tok = INDEX[meta['Tokenizer']].metadata
        assert meta['Codebooks'] == tok['Codebooks']
        assert meta['Downsample'] == tok['Downsample']
        assert config.model.grid_size == grid
    else:
        layout = layout_from_tokenizer(config, meta['Image Size'])
        assert layout == (tuple(grid), meta['Codebooks'])


SHIPPED = sorted(n for n, i in INDEX.items() if (i.weights or {}).get('path'))


@pytest.mark.parametrize('name', SHIPPED)
def test_shipped_weights_load_by_name(name):
    """The files shipped in the repository load with no download, their
    sha256 the index's."""
    info = INDEX[name]
    assert info.weights['sha256']
    model = get_model(name)
    assert not model.training
    assert sum(p.numel() for p in model.parameters()) == \
        info.metadata['Parameters']


def test_generators_whose_config_reads_a_tokenizer_agree_with_it():
    for info in INDEX.values():
        tokens = Config.fromfile(str(info.config)).model.get('tokens')
        if isinstance(tokens, dict):
            grid, sizes = layout_from_tokenizer(
                Config.fromfile(str(REPO / tokens['tokenizer'])),
                tokens['image_size'])
            assert list(grid) == info.metadata['Token Grid']
            assert sizes == info.metadata['Codebooks']


def test_docs_table_lists_every_entry_with_its_numbers():
    rows = {m[1]: m[2] for m in re.finditer(
        r'^\| `([\w-]+)` \|(.*)$', (REPO / 'docs' / 'zoo.md').read_text(),
        flags=re.M)}
    for name, info in INDEX.items():
        assert name in rows, name
        cells = [c.strip() for c in rows[name].split('|')]
        count = info.metadata['Parameters']
        assert cells[0] == (f'{count / 1e9:.2f}B' if count >= 1e9
                            else f'{count / 1e6:.1f}M'), name
        numbers = [float(v) for v in re.findall(r'\d+\.\d+|\d+', cells[3])]
        for value in (info.results[0]['Metrics'].values()
                      if info.results else []):
            assert float(value) in numbers, (name, value)


def test_list_models_matches_the_metafiles():
    names = [m['Name'] for m in yaml.safe_load(
        (REPO / 'configs' / 'llamagen' / 'metafile.yml').read_text())['Models']]
    assert list_models('llamagen*') == sorted(names)
    assert 'llamagen_gpt_b_c2i_256' in names and 'llamagen_vq_ds16_c2i' in names
    assert list_models('LlamaGen_GPT_B*') == ['llamagen_gpt_b_c2i_256',
                                              'llamagen_gpt_b_c2i_384']
    assert list_models('nothing*') == []
    assert set(list_models()) == set(INDEX)


def test_unknown_name_suggests_close_ones():
    with pytest.raises(KeyError, match="did you mean.*fqgan_dual_ds16"):
        model_info('fqgan_dual_ds61')


def test_no_released_weights_is_an_error_not_random_weights():
    with pytest.raises(WeightsUnavailableError,
                       match='far_b_fqgan_dual has no released weights.*'
                       'released no FAR weights.*pretrained='):
        get_model('far_b_fqgan_dual')


# --- a tiny index in tmp_path -------------------------------------------


def write_index(root: Path, entries: list) -> Path:
    """``root/model-index.yml`` importing one metafile of ``entries``
    (dicts of name, config text, metadata, weights)."""
    models = []
    for entry in entries:
        config = root / f'{entry["name"]}.py'
        config.write_text(entry['config'])
        model = {'Name': entry['name'], 'In Collection': 'Tiny',
                 'Config': config.name, 'Metadata': entry['metadata'],
                 'Weights': entry.get('weights')}
        if model['Weights'] is None:
            model['Note'] = 'nothing released'
        models.append(model)
    (root / 'metafile.yml').write_text(yaml.safe_dump(dict(
        Collections=[dict(Name='Tiny')], Models=models)))
    index = root / 'model-index.yml'
    index.write_text(yaml.safe_dump(dict(Import=['metafile.yml'])))
    return index


TOK_META = {'Parameters': 0, 'Codebooks': [32], 'Image Size': 16,
            'Token Grid': [8, 8], 'Downsample': 2}
GPT_META = {'Parameters': 0, 'Codebooks': [24], 'Image Size': 64,
            'Token Grid': [4, 4], 'Downsample': 16}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def tiny_tokenizer(tmp_path):
    """``(index, config, {revision: checkpoint})``: a tiny tokenizer with
    two trained-looking weight files."""
    config = tmp_path / 'tiny_tok.py'
    config.write_text(TINY_TOKENIZER)
    files = {}
    for seed, rev in enumerate(['a' * 40, 'b' * 40]):
        torch.manual_seed(seed)
        model = init_tokenizer(config)
        path = tmp_path / f'tok_{rev[0]}.pth'
        state = {k: v + 0.01 * torch.randn_like(v)
                 if v.is_floating_point() else v
                 for k, v in model.state_dict().items()}
        torch.save({'state_dict': state, 'meta': {'iter': 1}}, path)
        files[rev] = path
    weights = {'repo_id': 'org/tiny', 'filename': 'tok.pth',
               'revision': None, 'sha256': None}
    index = write_index(tmp_path, [dict(name='tiny_tok',
                                        config=TINY_TOKENIZER,
                                        metadata=TOK_META, weights=weights)])
    return index, config, files


def same_tokenizer(a, b) -> None:
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    x = x * 2 - 1
    assert torch.equal(a.encode(x), b.encode(x))
    assert torch.equal(a.reconstruct(x), b.reconstruct(x))


def test_local_file(tiny_tokenizer):
    index, config, files = tiny_tokenizer
    path = files['a' * 40]
    model = get_model('tiny_tok', pretrained=path, index=index)
    assert not model.training
    assert model.discriminator is None
    same_tokenizer(model, init_tokenizer(config, path))
    with pytest.raises(FileNotFoundError, match='tiny_tok.*nope.pth'):
        get_model('tiny_tok', pretrained=path.parent / 'nope.pth',
                  index=index)


def test_shipped_file_and_export(tiny_tokenizer, tmp_path):
    """Weights shipped in the repository (``path``), then exported for the
    tools as a config and a safetensors file with the token layout."""
    _, config, files = tiny_tokenizer
    shipped = files['a' * 40]
    root = tmp_path / 'shipped'
    root.mkdir()
    index = write_index(root, [dict(
        name='tiny_tok', config=TINY_TOKENIZER, metadata=TOK_META,
        weights={'path': str(shipped), 'sha256': sha256(shipped)})])
    model = get_model('tiny_tok', index=index)
    same_tokenizer(model, init_tokenizer(config, shipped))
    cfg, weights = export_model('tiny_tok', tmp_path / 'export', index=index)
    same_tokenizer(init_tokenizer(cfg, weights), model)
    layout = checkpoint_layout(weights)
    assert layout['codebook_sizes'] == [32]
    assert layout['grids'] == {'16x16': [8, 8]}
    shipped.unlink()
    with pytest.raises(WeightsUnavailableError,
                       match=f'shipped weights file {shipped} is missing'):
        get_model('tiny_tok', index=index)


def hub_cache(root: Path, repo_id: str, files: dict, main: str) -> Path:
    """A Hugging Face cache folder as ``huggingface_hub`` lays it out:
    ``models--org--name/snapshots/<rev>/<file>`` and ``refs/main``."""
    repo = root / ('models--' + repo_id.replace('/', '--'))
    for rev, (filename, src) in files.items():
        snapshot = repo / 'snapshots' / rev
        snapshot.mkdir(parents=True)
        (snapshot / filename).write_bytes(Path(src).read_bytes())
    (repo / 'refs').mkdir()
    (repo / 'refs' / 'main').write_text(main)
    return root


def test_hub_cache_offline_and_revision_pinning(tiny_tokenizer, tmp_path,
                                                monkeypatch):
    index, config, files = tiny_tokenizer
    rev_a, rev_b = sorted(files)
    cache = hub_cache(tmp_path / 'hub', 'org/tiny',
                      {rev: ('tok.pth', path) for rev, path in files.items()},
                      main=rev_a)
    monkeypatch.setenv('HF_HUB_CACHE', str(cache))
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    same_tokenizer(get_model('tiny_tok', index=index),
                   init_tokenizer(config, files[rev_a]))
    pinned = get_model('tiny_tok', revision=rev_b, index=index)
    same_tokenizer(pinned, init_tokenizer(config, files[rev_b]))
    with pytest.raises(AssertionError):
        same_tokenizer(pinned, init_tokenizer(config, files[rev_a]))


def test_nothing_cached_offline_names_repo_file_and_the_way_out(
        tiny_tokenizer, tmp_path, monkeypatch):
    index, _, _ = tiny_tokenizer
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path / 'empty'))
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    with pytest.raises(WeightsUnavailableError) as err:
        get_model('tiny_tok', index=index)
    message = str(err.value)
    for part in ('tok.pth', 'org/tiny', 'offline',
                 "get_model('tiny_tok', pretrained='/path/to/tok.pth')"):
        assert part in message


def test_sha256_is_checked(tiny_tokenizer, tmp_path):
    _, config, files = tiny_tokenizer
    good, other = files['a' * 40], files['b' * 40]
    weights = {'repo_id': 'org/tiny', 'filename': 'tok.pth',
               'sha256': sha256(good)}
    root = tmp_path / 'hashed'
    root.mkdir()
    index = write_index(root, [dict(name='tiny_tok', config=TINY_TOKENIZER,
                                    metadata=TOK_META, weights=weights)])
    same_tokenizer(get_model('tiny_tok', good, index=index),
                   init_tokenizer(config, good))
    with pytest.raises(HashMismatchError) as err:
        get_model('tiny_tok', other, index=index)
    for part in (str(other), sha256(good), sha256(other)):
        assert part in str(err.value)
    get_model('tiny_tok', other, index=index, check_hash=False)


def test_released_layout_is_converted_on_the_fly(tmp_path):
    """A LlamaGen-layout GPT file: get_model's logits equal those of the
    converter's output loaded by init_generator."""
    arch = dict(family='llamagen', width=32, num_layers=2, num_heads=4,
                num_kv_heads=4, ffn_hidden_dim=96, codebook_sizes=[24],
                num_classes=5)
    rng = torch.Generator().manual_seed(0)
    state = {k: torch.randn(shape, generator=rng) * 0.1
             for k, shape in released_shapes(arch).items()}
    src = tmp_path / 'c2i_tiny.pt'
    torch.save({'model': state}, src)
    index = write_index(tmp_path, [dict(name='tiny_gpt', config=TINY_GPT,
                                        metadata=GPT_META)])
    model = get_model('tiny_gpt', pretrained=src, index=index)
    converted, model_cfg = convert_released(src, 'llamagen', num_heads=4,
                                            grid_size=4)
    ckpt = tmp_path / 'converted.pth'
    torch.save(converted, ckpt)
    reference = init_generator(dict(model=model_cfg), ckpt)
    codes = torch.randint(24, (2, 1, 4, 4), generator=rng)
    labels = torch.tensor([0, 4])
    for got, want in zip(model.logits(codes, labels),
                         reference.logits(codes, labels)):
        assert torch.equal(got, want)


TINY_FQGAN = """
model = dict(
    type='ImageTokenizer',
    encoder=dict(type='VQGANTrunk', ch=8, ch_mult=(1, 2), num_res_blocks=1),
    heads=dict(type='TransformerBranchHead', in_channels=16, out_channels=8,
               num_layers=1, num_heads=2, grid_size=8),
    quantizer=dict(type='FactorizedQuantizer', num_codebooks=2,
                   quantizer=dict(type='VectorQuantizer', codebook_size=32,
                                  embed_dim=4, l2_norm=True)),
    decoder=dict(type='VQGANDecoder', ch=8, ch_mult=(1, 2), num_res_blocks=1,
                 z_channels=8),
    regularizers=[
        dict(type='DisentanglementRegularizer'),
        dict(type='SemanticRegularizer', branch=1,
             teacher=dict(type='EfficientNetTeacher', pretrained=False),
             head=dict(type='FeaturePredictionHead', in_channels=4, width=16,
                       num_layers=1, num_heads=2, grid_size=8))],
    discriminator=dict(type='PatchGANDiscriminator', ndf=8, num_layers=2))
"""
TINY_VQ = TINY_TOKENIZER.replace('embed_dim=4)', 'embed_dim=4, l2_norm=True)')


@pytest.mark.parametrize('family,config_text', [
    ('fqgan', TINY_FQGAN), ('llamagen_vq', TINY_VQ)])
def test_released_tokenizer_is_converted_on_the_fly(tmp_path, family,
                                                    config_text):
    """A file in the released FQGAN / LlamaGen VQ layout (random tensors
    under the released keys, plus the usage logs the releases save):
    get_model's codes and reconstructions equal those of the converter's
    output loaded by init_tokenizer."""
    from fqzoo.converters import fqgan_key_table, llamagen_vq_key_table
    config = tmp_path / 'tiny.py'
    config.write_text(config_text)
    model = init_tokenizer(config)
    if family == 'fqgan':
        table = fqgan_key_table('dual', [1])
        extra = {f'quantize_{b}.codebook_used': torch.zeros(32)
                 for b in ('vis', 'sem')}
    else:
        table = llamagen_vq_key_table()
        extra = {'quantize.codebook_used': torch.zeros(32)}
    rng = torch.Generator().manual_seed(0)
    state = {table.to_released(k): torch.randn(p.shape, generator=rng) * 0.2
             for k, p in model.named_parameters()}
    src = tmp_path / 'released.pt'
    torch.save({'model': dict(state, **extra)}, src)
    index = write_index(tmp_path, [dict(name='tiny', config=config_text,
                                        metadata=TOK_META)])
    zoo = get_model('tiny', pretrained=src, index=index)
    options = dict(config=str(config)) if family == 'fqgan' else {}
    converted, _ = convert_released(src, family, **options)
    ckpt = tmp_path / 'converted.pth'
    torch.save(converted, ckpt)
    same_tokenizer(zoo, init_tokenizer(config, ckpt))
    with pytest.raises(AssertionError):  # the weights are the file's
        same_tokenizer(zoo, model)


def test_unknown_layout_names_the_file(tmp_path):
    src = tmp_path / 'other.pt'
    torch.save({'model': {'some.weight': torch.zeros(2)}}, src)
    index = write_index(tmp_path, [dict(name='tiny_gpt', config=TINY_GPT,
                                        metadata=GPT_META)])
    with pytest.raises((KeyError, ValueError), match='other.pt'):
        get_model('tiny_gpt', pretrained=src, index=index)


def test_recorded_layout_must_match(tmp_path):
    """A grid no tensor shape shows (2-D RoPE has no parameters): a file
    recording 8x8 tokens is refused by a 4x4 model, both named."""
    meta = dict(GPT_META, **{'Codebooks': [24]})
    index = write_index(tmp_path, [
        dict(name='gpt_8', config=TINY_GPT, metadata=dict(
            meta, **{'Token Grid': [8, 8], 'Image Size': 128})),
        dict(name='gpt_4', config=TINY_GPT, metadata=meta)])
    _, weights = export_model('gpt_8', tmp_path / 'out', pretrained=False,
                              index=index)
    get_model('gpt_8', pretrained=weights, index=index)
    with pytest.raises(ValueError, match=f'{weights} and the model of .*'
                       r'gpt_4.py do not belong together.*grid \[8, 8\]'):
        get_model('gpt_4', pretrained=weights, index=index)


@pytest.mark.slow
def test_exported_pair_samples_through_the_tool(tmp_path):
    """export_model's files are what tools/sample.py takes: a generator and
    its tokenizer by name, sampled by the released protocol."""
    from conftest import run_tool
    gpt = TINY_GPT.replace('num_heads=4, ffn_hidden_dim=96', 'num_heads=4')
    index = write_index(tmp_path, [
        dict(name='tiny_tok', config=TINY_TOKENIZER, metadata=TOK_META),
        dict(name='tiny_gpt', config=gpt, metadata=dict(
            GPT_META, **{'Codebooks': [32], 'Token Grid': [8, 8],
                         'Image Size': 16, 'Downsample': 2,
                         'Tokenizer': 'tiny_tok'}))])
    out = tmp_path / 'zoo'
    gen_cfg, gen_ckpt = export_model('tiny_gpt', out, pretrained=False,
                                     index=index)
    tok_cfg, tok_ckpt = export_model('tiny_tok', out, pretrained=False,
                                     index=index)
    samples = tmp_path / 'samples'
    run_tool(['tools/sample.py', str(gen_cfg), str(gen_ckpt), '--tokenizer',
              str(tok_cfg), str(tok_ckpt), '--protocol', 'released',
              '--num', '8', '--streams', '2', '--batch-size', '4',
              '--cfg-scale', '2.0', '--device', 'cpu', '--out',
              str(samples)])
    images = np.load(samples / 'samples.npz')['arr_0']
    assert images.shape == (8, 16, 16, 3) and images.dtype == np.uint8
