"""CodeDataset reads the shards and manifest of tools/extract_codes.py."""
import json

import numpy as np
import pytest
import torch

from fqzoo.datasets.code_dataset import CodeDataset
from fqzoo.registry import DATASETS


def _write(root, shards, augmentations=(), labels=True) -> None:
    """A folder as extract_codes writes it, from ``shards`` (arrays)."""
    entries, start = [], 0
    for i, codes in enumerate(shards):
        np.save(root / f'codes_{i:05d}.npy', codes.astype(np.int16))
        if labels:
            np.save(root / f'labels_{i:05d}.npy',
                    np.arange(start, start + len(codes)))
        entries.append(dict(codes=f'codes_{i:05d}.npy',
                            labels=f'labels_{i:05d}.npy' if labels else None,
                            start=start, count=len(codes)))
        start += len(codes)
    (root / 'manifest.json').write_text(json.dumps(dict(
        count=start, augmentations=list(augmentations), shards=entries)))


def test_reads_across_shards(tmp_path):
    codes = np.arange(5 * 2 * 3 * 3).reshape(5, 2, 3, 3)
    _write(tmp_path, [codes[:2], codes[2:4], codes[4:]])
    dataset = DATASETS.build(dict(type='CodeDataset', data_root=str(tmp_path)))
    assert isinstance(dataset, CodeDataset) and len(dataset) == 5
    for i in range(5):
        item = dataset[i]
        assert item['codes'].dtype == torch.long
        assert torch.equal(item['codes'], torch.from_numpy(codes[i]))
        assert item['label'] == i
    assert torch.equal(dataset[-1]['codes'], dataset[4]['codes'])
    with pytest.raises(IndexError):
        dataset[5]


def test_views(tmp_path):
    codes = np.random.default_rng(0).integers(0, 16, (3, 10, 2, 4, 4))
    _write(tmp_path, [codes], augmentations=['ten_crop'], labels=False)
    assert torch.equal(CodeDataset(str(tmp_path))[1]['codes'],
                       torch.from_numpy(codes[1]).long())
    assert torch.equal(CodeDataset(str(tmp_path), view=3)[1]['codes'],
                       torch.from_numpy(codes[1, 3]).long())
    random_view = CodeDataset(str(tmp_path), view='random')[2]['codes']
    assert any(torch.equal(random_view, torch.from_numpy(v).long())
               for v in codes[2])
    assert CodeDataset(str(tmp_path))[0]['label'] == -1
    with pytest.raises(ValueError, match='view'):
        CodeDataset(str(tmp_path), view='first')


def test_missing_manifest_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match='extract_codes'):
        CodeDataset(str(tmp_path))


def test_a_label_count_that_does_not_match_the_grids_is_named(tmp_path):
    codes = np.zeros((4, 2, 3, 3))
    _write(tmp_path, [codes[:2], codes[2:]])
    np.save(tmp_path / 'labels_00001.npy', np.arange(3))
    with pytest.raises(ValueError) as err:
        CodeDataset(str(tmp_path))
    assert (f'{tmp_path}/labels_00001.npy holds 3 rows, the manifest '
            f'{tmp_path}/manifest.json says 2 (and codes_00001.npy holds 2 '
            'grids)') in str(err.value)


def test_exposes_layout_and_tokenizer(tmp_path):
    _write(tmp_path, [np.zeros((2, 2, 3, 5))])
    manifest = json.loads((tmp_path / 'manifest.json').read_text())
    layout = dict(codebook_sizes=[8, 4], sub_tokens=['semantic_clip',
                                                      'pixel'],
                  downsample_factor=8, grids={'24x40': [3, 5]})
    manifest.update(code_shape=[2, 3, 5], codebook_sizes=[8, 4],
                    token_layout=layout,
                    tokenizer=dict(path='/m/tok.pth', sha256='ab' * 32))
    (tmp_path / 'manifest.json').write_text(json.dumps(manifest))
    dataset = CodeDataset(str(tmp_path))
    assert dataset.token_layout == dict(layout, grid=[3, 5])
    assert dataset.tokenizer_checkpoint == dict(path='/m/tok.pth',
                                                sha256='ab' * 32)
