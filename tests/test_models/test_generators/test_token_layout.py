"""Where a generator reads its token grid and sub-codebook sizes: a codes
manifest, a tokenizer config, explicit values (which win)."""
import json

import pytest

from fqzoo.errors import InputError
from fqzoo.models.generators.token_layout import (
    layout_from_codes,
    layout_from_tokenizer,
    resolve_token_layout,
)


def write_manifest(folder, code_shape=(6, 2, 3, 5), sizes=(7, 9)):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'manifest.json').write_text(json.dumps(dict(
        code_shape=list(code_shape), codebook_sizes=list(sizes))))
    return folder


def write_tokenizer_config(path, num_codebooks=3, codebook_size=12):
    path.write_text(f'''
model = dict(
    type='ImageTokenizer',
    encoder=dict(type='VQGANEncoder', ch=8, ch_mult=(1, 2, 2),
                 num_res_blocks=1, z_channels=4, num_groups=4),
    quantizer=dict(type='FactorizedQuantizer', num_codebooks={num_codebooks},
                   quantizer=dict(type='VectorQuantizer',
                                  codebook_size={codebook_size},
                                  embed_dim=4)))
''')
    return path


def test_from_a_codes_manifest(tmp_path):
    folder = write_manifest(tmp_path / 'codes')
    assert layout_from_codes(folder) == ((3, 5), [7, 9])
    assert layout_from_codes(str(folder)) == ((3, 5), [7, 9])
    assert resolve_token_layout(None, None, str(folder)) == ((3, 5), [7, 9])


def test_missing_manifest_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match='manifest.json.*extract_codes.py'):
        layout_from_codes(tmp_path)


@pytest.mark.parametrize('manifest', [
    dict(code_shape=[], codebook_sizes=[7, 9]),      # no shard written
    dict(code_shape=[5], codebook_sizes=[7, 9]),
    dict(code_shape=[2, 3, 5], codebook_sizes=[]),
    dict(code_shape=[2, 3, 5]),
])
def test_a_manifest_without_a_layout_names_the_file(tmp_path, manifest):
    (tmp_path / 'manifest.json').write_text(json.dumps(manifest))
    with pytest.raises(InputError) as info:
        layout_from_codes(tmp_path)
    message = str(info.value)
    assert str(tmp_path / 'manifest.json') in message
    assert f'code_shape {manifest["code_shape"]!r}' in message
    assert 'set grid_size and codebook_sizes' in message


def test_from_a_tokenizer_config(tmp_path):
    config = write_tokenizer_config(tmp_path / 'tok.py')
    # downsample 4: 16x16 images -> 4x4, 16x8 -> 4x2
    assert layout_from_tokenizer(config, 16) == ((4, 4), [12, 12, 12])
    assert layout_from_tokenizer(str(config), (16, 8)) == ((4, 2),
                                                           [12, 12, 12])
    assert resolve_token_layout(
        None, None, dict(tokenizer=str(config), image_size=8)) == (
            (2, 2), [12, 12, 12])
    with pytest.raises(ValueError, match='not divisible.*4'):
        layout_from_tokenizer(config, 18)


def test_explicit_values_win(tmp_path):
    folder = write_manifest(tmp_path / 'codes')
    assert resolve_token_layout((2, 4), None, folder) == ((2, 4), [7, 9])
    assert resolve_token_layout(None, [3], folder) == ((3, 5), [3])
    # both given: the source is not even read
    assert resolve_token_layout([2, 2], (5, 6), tmp_path / 'nowhere') == (
        (2, 2), [5, 6])


def test_missing_everything_explains_the_options():
    with pytest.raises(ValueError,
                       match='grid_size and codebook_sizes, or tokens='):
        resolve_token_layout(None, [4], None)


@pytest.mark.parametrize('grid', [(4, ), (0, 3), (2, 2, 2)])
def test_bad_grid(grid):
    with pytest.raises(ValueError, match='grid_size must be'):
        resolve_token_layout(grid, [4])
