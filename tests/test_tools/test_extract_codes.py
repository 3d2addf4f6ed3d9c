"""tools/extract_codes.py and fqzoo.apis.codes: round trip, resume,
augmented views."""
import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from conftest import TinySyntheticImages, run_tool, write_tiny_config
from mmengine.dataset import default_collate

from fqzoo.apis import init_tokenizer
from fqzoo.apis.codes import augment_views, extract_codes
from fqzoo.datasets.code_dataset import CodeDataset
from fqzoo.utils.files import file_sha256

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


def _ten_crop(images: torch.Tensor) -> torch.Tensor:
    """``[B, 10, 3, H, W]`` by hand: torchvision's resize by 1.1 (bicubic,
    antialiased), the four corner windows and the centre one (offset
    rounded down) cut by slicing, then each one mirrored. Sides that 1.1
    turns into whole numbers only (20 -> 22): ``augment_views`` magnifies
    by exactly 1.1 and keeps ``floor(1.1 H)`` pixels, a resize to that
    size maps coordinates by ``floor(1.1 H) / H``."""
    height, width = images.shape[-2:]
    big = TF.resize(images, [int(height * 1.1), int(width * 1.1)],
                    TF.InterpolationMode.BICUBIC, antialias=True).clamp(-1, 1)
    dy, dx = big.shape[-2] - height, big.shape[-1] - width
    crops = [big[..., y:y + height, x:x + width] for y, x in (
        (0, 0), (0, dx), (dy, 0), (dy, dx), (dy // 2, dx // 2))]
    return torch.stack(crops + [crop.flip(-1) for crop in crops], 1)


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
    views = augment_views(images, ten_crop=True)    # by value below
    ten = CodeDataset(str(tmp_path / 'ten'))
    for i in range(4):
        assert torch.equal(ten[i]['codes'], tok.encode(views[i])), i
    random_view = CodeDataset(str(tmp_path / 'ten'), view='random')[0][
        'codes']
    assert any(torch.equal(random_view, v) for v in ten[0]['codes'])


def test_augment_views():
    images = torch.rand(2, 3, 20, 20) * 2 - 1
    ten = augment_views(images, ten_crop=True)
    assert ten.shape == (2, 10, 3, 20, 20)
    torch.testing.assert_close(ten, _ten_crop(images), atol=1e-5, rtol=0)
    assert torch.equal(ten[:, 5:], ten[:, :5].flip(-1))
    assert ten.abs().max() <= 1
    rect = torch.rand(1, 3, 20, 30) * 2 - 1
    torch.testing.assert_close(augment_views(rect, ten_crop=True),
                               _ten_crop(rect), atol=1e-5, rtol=0)
    flip = augment_views(images, flip=True)
    assert torch.equal(flip[:, 0], images)
    assert torch.equal(flip[:, 1], images.flip(-1))
    plain = augment_views(images)
    assert plain.shape == (2, 1, 3, 20, 20)
    assert torch.equal(plain[:, 0], images)  # the images themselves


def test_labels_are_optional(fq_model, tmp_path):
    class NoLabels(TinySyntheticImages):
        def __getitem__(self, index: int) -> dict:
            return dict(inputs=super().__getitem__(index)['inputs'])

    manifest = extract_codes(fq_model['tokenizer'], NoLabels(num_samples=3),
                             str(tmp_path / 'c'))
    assert manifest['labels'] is False
    assert not list(Path(tmp_path / 'c').glob('labels_*'))
    assert CodeDataset(str(tmp_path / 'c'))[2]['label'] == -1
    np.testing.assert_array_equal(
        np.load(tmp_path / 'c' / 'codes_00000.npy'),
        fq_model['tokenizer'].encode(_images(NoLabels(num_samples=3))))


# ------------------------------------------------ pairing and stale shards
def _stamps(folder: Path) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_manifest_records_layout_and_checkpoint_hash(fq_model, tmp_path):
    manifest = extract_codes(fq_model['tokenizer'],
                             TinySyntheticImages(num_samples=3),
                             tmp_path / 'c', checkpoint=fq_model['checkpoint'],
                             info=dict(config=str(fq_model['config'])))
    assert manifest['token_layout'] == dict(
        codebook_sizes=[16, 16], sub_tokens=['pixel', 'pixel'],
        downsample_factor=2, grids={'16x16': [8, 8]})
    assert manifest['tokenizer'] == dict(
        path=str(Path(fq_model['checkpoint']).resolve()),
        sha256=file_sha256(fq_model['checkpoint']))
    assert manifest['info'] == dict(config=str(fq_model['config']))


def test_a_checkpoint_of_another_layout_is_refused(fq_model, tmp_path):
    tok = fq_model['tokenizer']
    layout = dict(tok.token_layout(), sub_tokens=['semantic_clip', 'pixel'])
    checkpoint = tmp_path / 'relabelled.pth'
    torch.save(dict(state_dict=tok.state_dict(),
                    meta=dict(token_layout=layout)), checkpoint)
    out = tmp_path / 'never'
    with pytest.raises(ValueError) as err:
        extract_codes(tok, TinySyntheticImages(num_samples=3), out,
                      checkpoint=checkpoint,
                      info=dict(config=str(fq_model['config'])))
    assert (f"sub_tokens ['semantic_clip', 'pixel'] in the tokenizer "
            f"checkpoint {checkpoint}, ['pixel', 'pixel'] in the tokenizer "
            f"built from {fq_model['config']}") in str(err.value)
    assert not out.exists()


def test_another_checkpoint_file_is_refused(fq_model, tmp_path):
    out = tmp_path / 'codes'
    dataset = TinySyntheticImages(num_samples=3)
    extract_codes(fq_model['tokenizer'], dataset, out,
                  checkpoint=fq_model['checkpoint'])
    before = _stamps(out)
    other = tmp_path / 'other.pth'
    torch.manual_seed(5)
    torch.save(dict(state_dict=init_tokenizer(fq_model['config'])
                    .state_dict()), other)
    with pytest.raises(ValueError) as err:
        extract_codes(init_tokenizer(fq_model['config'], other), dataset, out,
                      checkpoint=other)
    message = str(err.value)
    old_sha, new_sha = file_sha256(fq_model['checkpoint']), file_sha256(other)
    assert (f'tokenizer: {Path(fq_model["checkpoint"]).resolve()} (sha256 '
            f'{old_sha[:16]}...) in the folder, now {other.resolve()} '
            f'(sha256 {new_sha[:16]}...)') in message
    assert _stamps(out) == before


def test_new_weights_at_the_same_path_are_encoded_again(fq_model, tmp_path):
    """The issue's case: new weights saved over the checkpoint; the old
    shards were kept (every code wrong, exit 0). Now they are redone."""
    checkpoint = tmp_path / 'tok.pth'
    torch.save(dict(state_dict=fq_model['tokenizer'].state_dict()),
               checkpoint)
    out = tmp_path / 'codes'
    dataset = TinySyntheticImages(num_samples=5)
    extract_codes(init_tokenizer(fq_model['config'], checkpoint), dataset,
                  out, checkpoint=checkpoint, shard_size=2)
    torch.manual_seed(7)
    torch.save(dict(state_dict=init_tokenizer(fq_model['config'])
                    .state_dict()), checkpoint)
    new = init_tokenizer(fq_model['config'], checkpoint)
    manifest = extract_codes(new, dataset, out, checkpoint=checkpoint,
                             shard_size=2)
    assert manifest['tokenizer']['sha256'] == file_sha256(checkpoint)
    codes = CodeDataset(str(out))
    stored = torch.stack([codes[i]['codes'] for i in range(5)])
    assert torch.equal(stored, new.encode(_images(dataset)))
    assert not torch.equal(stored,
                           fq_model['tokenizer'].encode(_images(dataset)))


def test_labels_must_be_whole_numbers(fq_model, tmp_path):
    class HalfLabels(TinySyntheticImages):
        def __getitem__(self, index: int) -> dict:
            item = super().__getitem__(index)
            item['data_samples']['label'] = [1.0, 0.5, 2.7][index]
            return item

    out = tmp_path / 'codes'
    with pytest.raises(ValueError) as err:
        extract_codes(fq_model['tokenizer'], HalfLabels(num_samples=3), out)
    assert ('labels of samples 0 to 2 must be whole numbers (class '
            'indices), got 0.5 (item 1), 2.7 (item 2)') in str(err.value)
    assert not list(out.glob('*.npy'))


def test_ranks_encode_their_shards(fq_model, tmp_path):
    """Two processes (threads here, a barrier between them) encode every
    other shard; the folder equals one process's."""
    dataset = TinySyntheticImages(num_samples=5)
    barrier = threading.Barrier(2)
    results = {}

    def rank(r):
        results[r] = extract_codes(
            fq_model['tokenizer'], dataset, tmp_path / 'two', shard_size=2,
            rank=r, world_size=2, barrier=barrier.wait, progress=False)

    threads = [threading.Thread(target=rank, args=(r,)) for r in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results[1] is None and results[0]['count'] == 5
    one = extract_codes(fq_model['tokenizer'], dataset, tmp_path / 'one',
                        shard_size=2, progress=False)
    assert one == results[0]
    for name in ('codes_00000.npy', 'codes_00001.npy', 'codes_00002.npy'):
        np.testing.assert_array_equal(np.load(tmp_path / 'one' / name),
                                      np.load(tmp_path / 'two' / name))


@pytest.mark.slow
def test_torchrun_two_cpu_processes(fq_model, tmp_path):
    """tools/extract_codes.py under torchrun (2 gloo processes) writes what
    one process writes."""
    args = [str(fq_model['config']), str(fq_model['checkpoint']), '--split',
            'test', '--shard-size', '3', '--device', 'cpu']
    run_tool([sys.executable, '-m', 'torch.distributed.run', '--standalone',
              '--nproc_per_node', '2', 'tools/extract_codes.py', *args,
              '--out', str(tmp_path / 'two'), '--launcher', 'pytorch'])
    run_tool(['tools/extract_codes.py', *args, '--out', str(tmp_path / 'one')])
    two, one = CodeDataset(str(tmp_path / 'two')), CodeDataset(
        str(tmp_path / 'one'))
    assert two.manifest == one.manifest and len(two) == 8
    for i in range(8):
        assert torch.equal(two[i]['codes'], one[i]['codes'])
