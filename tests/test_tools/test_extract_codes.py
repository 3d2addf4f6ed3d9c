"""tools/extract_codes.py and fqzoo.apis.codes: round trip, resume,
augmented views."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TinySyntheticImages, run_tool, write_tiny_config
from mmengine.dataset import default_collate

from fqzoo.apis import init_tokenizer
from fqzoo.apis.codes import augment_views, extract_codes
from fqzoo.datasets.code_dataset import CodeDataset

FQ_CONFIG = '''_base_ = ['./tiny_vq.py']
model = dict(quantizer=dict(_delete_=True, type='FactorizedQuantizer',
                            num_codebooks=2,
                            quantizer=dict(type='VectorQuantizer',
                                           codebook_size=16, embed_dim=4)))
'''


@pytest.fixture
def fq_model(tmp_path) -> dict:
    """A random 2-sub-codebook tokenizer saved as a checkpoint."""
    write_tiny_config(tmp_path / 'tiny_vq.py', tmp_path / 'w')
    config = tmp_path / 'tiny_fq.py'
    config.write_text(FQ_CONFIG)
    torch.manual_seed(0)
    checkpoint = tmp_path / 'fq.pth'
    torch.save(dict(state_dict=init_tokenizer(config).state_dict()),
               checkpoint)
    return dict(config=config, checkpoint=checkpoint,
                tokenizer=init_tokenizer(config, checkpoint))


def _images(dataset) -> torch.Tensor:
    return default_collate([dataset[i] for i in range(len(dataset))])['inputs']


@pytest.mark.slow
def test_extract_codes_round_trip(fq_model, tmp_path):
    out = tmp_path / 'codes'
    run_tool(['tools/extract_codes.py', str(fq_model['config']),
              str(fq_model['checkpoint']), '--split', 'test', '--out',
              str(out), '--batch-size', '3', '--shard-size', '3'])
    codes = CodeDataset(str(out))
    assert codes.manifest['count'] == 8 and len(codes) == 8
    assert [s['count'] for s in codes.manifest['shards']] == [3, 3, 2]
    assert codes.manifest['code_shape'] == [2, 8, 8]
    assert codes.manifest['dtype'] == 'int16'
    assert codes.manifest['codebook_sizes'] == [16, 16]
    assert codes.manifest['split'] == 'test'

    dataset = TinySyntheticImages(num_samples=8, seed=1)    # the test split
    tok = fq_model['tokenizer']
    images = _images(dataset)
    stored = torch.stack([codes[i]['codes'] for i in range(len(codes))])
    assert stored.dtype == torch.long
    assert torch.equal(stored, tok.encode(images))
    torch.testing.assert_close(tok.decode(stored), tok.reconstruct(images))
    assert [codes[i]['label'] for i in range(8)] == [i % 3 for i in range(8)]


def test_extract_codes_resumes_at_missing_shards(fq_model, tmp_path):
    out = tmp_path / 'codes'
    dataset = TinySyntheticImages(num_samples=7)
    kwargs = dict(batch_size=2, shard_size=3, meta=dict(split='train'))
    first = extract_codes(fq_model['tokenizer'], dataset, str(out), **kwargs)
    shards = sorted(out.glob('*_0000*.npy'))
    stamps = {p.name: p.stat().st_mtime_ns for p in shards}
    os.remove(out / 'codes_00001.npy')
    again = extract_codes(fq_model['tokenizer'], dataset, str(out), **kwargs)
    assert again == first
    for path in shards:
        changed = path.stat().st_mtime_ns != stamps[path.name]
        assert changed == path.name.endswith('_00001.npy'), path.name
    assert not list(out.glob('.*.tmp*'))
    with pytest.raises(ValueError, match='other settings'):
        extract_codes(fq_model['tokenizer'], dataset, str(out), batch_size=2,
                      shard_size=4)


def test_extract_codes_with_augmented_views(fq_model, tmp_path):
    dataset = TinySyntheticImages(num_samples=4)
    tok = fq_model['tokenizer']
    images = _images(dataset)
    manifest = extract_codes(tok, dataset, str(tmp_path / 'flip'), flip=True)
    assert manifest['code_shape'] == [2, 2, 8, 8]
    assert manifest['num_augs'] == 2
    views = CodeDataset(str(tmp_path / 'flip'))[1]['codes']
    assert torch.equal(views[0], tok.encode(images[1:2])[0])
    assert torch.equal(views[1], tok.encode(images[1:2].flip(-1))[0])

    extract_codes(tok, dataset, str(tmp_path / 'ten'), ten_crop=True)
    assert CodeDataset(str(tmp_path / 'ten'))[0]['codes'].shape == \
        (10, 2, 8, 8)
    assert CodeDataset(str(tmp_path / 'ten'), view='random')[0][
        'codes'].shape == (2, 8, 8)


def test_augment_views():
    images = torch.rand(2, 3, 20, 20) * 2 - 1
    ten = augment_views(images, ten_crop=True)
    assert ten.shape == (2, 10, 3, 20, 20)
    assert torch.equal(ten[:, 5:], ten[:, :5].flip(-1))
    assert ten.abs().max() <= 1
    flip = augment_views(images, flip=True)
    assert torch.equal(flip[:, 0], images)
    assert torch.equal(flip[:, 1], images.flip(-1))
    assert augment_views(images).shape == (2, 1, 3, 20, 20)


def test_labels_are_optional(fq_model, tmp_path):
    class NoLabels(TinySyntheticImages):
        def __getitem__(self, index: int) -> dict:
            return dict(inputs=super().__getitem__(index)['inputs'])

    manifest = extract_codes(fq_model['tokenizer'], NoLabels(num_samples=3),
                             str(tmp_path / 'c'))
    assert manifest['labels'] is False
    assert not list(Path(tmp_path / 'c').glob('labels_*'))
    assert CodeDataset(str(tmp_path / 'c'))[2]['label'] == -1
    assert np.load(tmp_path / 'c' / 'codes_00000.npy').shape == (3, 2, 8, 8)
