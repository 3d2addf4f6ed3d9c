"""fqzoo.utils.token_layout (the layout as plain values, compared by name)
and fqzoo.utils.labels (class labels refused, never cut)."""
import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from fqzoo.models.tokenizers import ImageTokenizer
from fqzoo.utils.labels import class_labels
from fqzoo.utils.token_layout import (
    check_same_layout,
    checkpoint_layout,
    index_dtype,
    layout_differences,
    layout_meta,
    make_layout,
    merge_layouts,
)

TRUNK = dict(type='VQGANEncoder', ch=8, ch_mult=(1, 2, 2), num_res_blocks=1,
             z_channels=8)


def _tokenizer(quantizer, regularizers=()):
    return ImageTokenizer(
        encoder=TRUNK, decoder=dict(TRUNK, type='VQGANDecoder'),
        quantizer=quantizer, regularizers=list(regularizers))


def test_make_layout_grids_by_image_size():
    layout = make_layout([16384, 16384], sub_tokens=['semantic_clip', 'pixel'],
                         downsample_factor=16, image_sizes=[256, (384, 512)])
    assert layout == dict(codebook_sizes=[16384, 16384],
                          sub_tokens=['semantic_clip', 'pixel'],
                          downsample_factor=16,
                          grids={'256x256': [16, 16], '384x512': [24, 32]})
    assert json.loads(json.dumps(layout)) == layout     # plain values
    with pytest.raises(ValueError, match='not divisible by the downsample '
                       'factor 16'):
        make_layout([4], downsample_factor=16, image_sizes=[100])
    with pytest.raises(ValueError, match='1 sub-token names'):
        make_layout([4, 4], sub_tokens=['pixel'])


def test_tokenizer_layout_names_branches_by_what_supervises_them():
    fq = dict(type='FactorizedQuantizer', num_codebooks=2,
              quantizer=dict(type='VectorQuantizer', codebook_size=32,
                             embed_dim=4))
    semantic = dict(type='SemanticRegularizer', branch=0, name='clip',
                    teacher=dict(type='EfficientNetTeacher'),
                    head=dict(type='FeaturePredictionHead', in_channels=4,
                              width=1280, num_layers=1, grid_size=4))
    tok = _tokenizer(fq, [semantic])
    assert tok.token_layout([16, (32, 16)]) == dict(
        codebook_sizes=[32, 32], sub_tokens=['semantic_clip', 'pixel'],
        downsample_factor=4, grids={'16x16': [4, 4], '32x16': [8, 4]})
    rvq = _tokenizer(dict(type='ResidualVQ', depth=3,
                          quantizer=dict(type='VectorQuantizer',
                                         codebook_size=8, embed_dim=4)))
    assert rvq.token_layout()['sub_tokens'] == ['pixel.0', 'pixel.1',
                                                'pixel.2']


def test_differences_compare_known_keys_only():
    a = make_layout([16, 16], sub_tokens=['pixel', 'pixel'],
                    downsample_factor=4, image_sizes=[16])
    assert layout_differences(a, make_layout([16, 16])) == []
    assert layout_differences(a, None) == []
    b = make_layout([16, 32], downsample_factor=8, image_sizes=[16, 32])
    assert layout_differences(a, b) == [
        ('codebook_sizes', [16, 16], [16, 32]),
        ('downsample_factor', 4, 8), ('grid at 16x16', [4, 4], [2, 2])]
    with pytest.raises(ValueError) as err:
        check_same_layout(a, b, first_name='A.pth', second_name='B.py')
    assert str(err.value) == (
        'A.pth and B.py do not belong together: their token layouts differ '
        '(codebook_sizes [16, 16] in A.pth, [16, 32] in B.py; '
        'downsample_factor 4 in A.pth, 8 in B.py; grid at 16x16 [4, 4] in '
        'A.pth, [2, 2] in B.py)')
    merged = merge_layouts(make_layout([16, 16], grid=[4, 4]), a)
    assert merged == dict(a, grid=[4, 4])


def test_checkpoint_layout_of_torch_and_safetensors_files(tmp_path):
    layout = make_layout([8], sub_tokens=['pixel'], downsample_factor=2,
                         image_sizes=[8])
    torch.save(dict(state_dict=dict(w=torch.ones(2)),
                    meta=dict(token_layout=layout)), tmp_path / 'a.pth')
    assert checkpoint_layout(tmp_path / 'a.pth') == layout
    torch.save(dict(state_dict=dict(w=torch.ones(2))), tmp_path / 'b.pth')
    assert checkpoint_layout(tmp_path / 'b.pth') is None
    save_file(dict(w=torch.ones(2)), str(tmp_path / 'c.safetensors'),
              metadata=layout_meta(layout))
    assert checkpoint_layout(tmp_path / 'c.safetensors') == layout
    whole = (tmp_path / 'a.pth').read_bytes()
    (tmp_path / 'd.pth').write_bytes(whole[:len(whole) // 2])
    with pytest.raises(ValueError, match=f'{tmp_path}/d.pth is not a '
                       'torch.save zip archive'):
        checkpoint_layout(tmp_path / 'd.pth')


def test_index_dtype():
    assert index_dtype(2 ** 15) == np.int16
    assert index_dtype(2 ** 15 + 1) == np.int32


def test_class_labels_are_whole_numbers():
    assert class_labels(torch.tensor([3.0, 0.0])).tolist() == [3, 0]
    assert class_labels(np.array([[1, 2]], np.uint8)).dtype == np.int64
    with pytest.raises(ValueError) as err:
        class_labels(torch.tensor([0.5, 1.0, 2.7]), 'labels of batch 3')
    assert str(err.value) == (
        'labels of batch 3 must be whole numbers (class indices), got 0.5 '
        '(item 0), 2.7 (item 2): refusing to cut them to integers')
    with pytest.raises(ValueError, match='whole numbers, got bool'):
        class_labels([True, False])
    with pytest.raises(ValueError, match=r'got nan \(item 0\)'):
        class_labels([float('nan')])
