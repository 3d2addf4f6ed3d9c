"""fqzoo.generation.sampler and tools/sample.py: class-balanced sampling of
a tiny random generator through a tiny random tokenizer into resumable
shards, ``samples.npz``, grids and ``sampling.json``."""
import hashlib
import json
import os
import runpy
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, run_tool, write_tiny_config
from mmengine.config import Config
from PIL import Image

from fqzoo.apis import init_generator, init_tokenizer
from fqzoo.generation import shards as shard_io
from fqzoo.generation.sampler import run_sampling, sample_batch

TOKENIZER = '''_base_ = ['./tiny_vq.py']
model = dict(
    encoder=dict(ch_mult=(1, 2, 2)), decoder=dict(ch_mult=(1, 2, 2)),
    quantizer=dict(_delete_=True, type='FactorizedQuantizer', num_codebooks=2,
                   quantizer=dict(type='VectorQuantizer', codebook_size=16,
                                  embed_dim=4)))
'''
GENERATOR = '''model = dict(
    type='AutoregressiveGenerator', num_classes=3,
    backbone=dict(type='LlamaGenBackbone', width=16, num_layers=1,
                  num_heads=2),
    head=dict(type='FactorizedARHead', num_layers=1, num_heads=2),
    grid_size=(4, 4), codebook_sizes=[16, 16])
'''
SAMPLING = dict(cfg_scale=2.0, temperature=1.0, top_k=[0, 8], top_p=0.95)


@pytest.fixture(scope='module')
def models(tmp_path_factory) -> dict:
    """A random FQ tokenizer (16x16 images, 2 x 16 codes on a 4x4 grid) and
    a random FAR generator over its tokens, saved and loaded back."""
    root = tmp_path_factory.mktemp('models')
    write_tiny_config(root / 'tiny_vq.py', root / 'w')
    tok_cfg = root / 'tok.py'
    tok_cfg.write_text(TOKENIZER)
    gen_cfg = root / 'gen.py'
    gen_cfg.write_text(GENERATOR)
    torch.manual_seed(0)
    tok_ckpt, gen_ckpt = root / 'tok.pth', root / 'gen.pth'
    torch.save(dict(state_dict=init_tokenizer(tok_cfg).state_dict()),
               tok_ckpt)
    gen = init_generator(gen_cfg)
    with torch.no_grad():   # zero-initialised outputs would sample uniformly
        for param in gen.parameters():
            param.add_(torch.randn_like(param) * 0.3)
    torch.save(dict(state_dict=gen.state_dict()), gen_ckpt)
    return dict(tok_cfg=tok_cfg, tok_ckpt=tok_ckpt, gen_cfg=gen_cfg,
                gen_ckpt=gen_ckpt, tokenizer=init_tokenizer(tok_cfg, tok_ckpt),
                generator=init_generator(gen_cfg, gen_ckpt))


def _sample(models, out, **kwargs):
    args = dict(num=6, seed=10, batch_size=2, shard_size=4, progress=False,
                **SAMPLING)
    args.update(kwargs)
    return run_sampling(models['generator'], models['tokenizer'], out, **args)


def _stamps(folder: Path) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_sample_alone_or_in_a_batch(models):
    gen, tok = models['generator'], models['tokenizer']
    tokens, images, _ = sample_batch(gen, tok, np.array([0, 2, 1]),
                                     np.array([5, 6, 7]), **SAMPLING)
    alone, alone_images, _ = sample_batch(gen, tok, np.array([2]),
                                          np.array([6]), **SAMPLING)
    assert tokens.shape == (3, 2, 4, 4) and images.shape == (3, 16, 16, 3)
    assert images.dtype == np.uint8
    assert torch.equal(tokens[1:2], alone)
    np.testing.assert_array_equal(images[1:2], alone_images)
    other, _, _ = sample_batch(gen, tok, np.array([2]), np.array([8]),
                               **SAMPLING)
    assert not torch.equal(other, alone)   # another seed, other tokens
    no_cache, _, _ = sample_batch(gen, tok, np.array([2]), np.array([6]),
                                  use_cache=False, **SAMPLING)
    assert torch.equal(no_cache, alone)


def test_run_writes_balanced_npz_grids_and_record(models, tmp_path):
    record = _sample(models, tmp_path, num=9, info=dict(note='x'),
                     eval_command='python tools/eval_generation.py ...')
    with np.load(tmp_path / 'samples.npz') as data:
        images, labels = data['arr_0'], data['arr_1']
    assert images.shape == (9, 16, 16, 3) and images.dtype == np.uint8
    assert labels.tolist() == [0, 1, 2] * 3
    assert record['per_class'] == {'0': 3, '1': 3, '2': 3}
    # sample i: class i % 3, seed 10 + i, whatever shard or batch it was in
    tokens, alone, _ = sample_batch(models['generator'], models['tokenizer'],
                                    np.array([1]), np.array([10 + 7]),
                                    **SAMPLING)
    np.testing.assert_array_equal(images[7], alone[0])
    shard = shard_io.read_shard(tmp_path / 'shard_00001.npz')
    np.testing.assert_array_equal(shard['tokens'][3], tokens[0].numpy())
    assert shard['seeds'].tolist() == [14, 15, 16, 17]
    decoded = models['tokenizer'].decode(torch.from_numpy(
        shard['tokens']).long())
    np.testing.assert_array_equal(
        ((decoded + 1) * 127.5).round().clamp(0, 255).byte()
        .permute(0, 2, 3, 1).numpy(), shard['images'])

    assert record == json.loads((tmp_path / 'sampling.json').read_text())
    assert record['sampling']['cfg_scale'] == 2.0
    assert record['sampling']['top_k'] == [0, 8]
    assert record['sampling']['seed'] == 10 and record['num'] == 9
    assert record['token_shape'] == [2, 4, 4]
    assert record['token_dtype'] == 'int16'
    assert record['timings']['images_per_s'] > 0
    assert record['timings']['tokens_per_s'] > 0
    assert record['note'] == 'x' and record['eval_command'].startswith(
        'python tools/eval_generation.py')
    assert [s['count'] for s in record['shards']] == [4, 4, 1]
    # grids by value: cell (r, c) at (2 + 66 r, 2 + 66 c) is a sample
    # upscaled 4x by repeating pixels, on white padding
    def cells(path, rows, cols):
        grid = np.asarray(Image.open(path).convert('RGB'))
        assert grid.shape == (2 + rows * 66, 2 + cols * 66, 3)
        padding = np.ones(grid.shape[:2], bool)
        out = np.empty((rows, cols, 64, 64, 3), np.uint8)
        for r in range(rows):
            for c in range(cols):
                y, x = 2 + 66 * r, 2 + 66 * c
                out[r, c] = grid[y:y + 64, x:x + 64]
                padding[y:y + 64, x:x + 64] = False
        assert (grid[padding] == 255).all()
        return out

    def big(image):
        return image.repeat(4, 0).repeat(4, 1)

    for label in range(3):       # the class's first 3 samples in a row
        row = cells(tmp_path / f'grid_class_{label}.png', 1, 3)[0]
        for c in range(3):
            np.testing.assert_array_equal(row[c], big(images[label + 3 * c]))
    table = cells(tmp_path / 'grid.png', 3, 3)          # a row per class
    for r in range(3):
        for c in range(3):
            np.testing.assert_array_equal(table[r, c],
                                          big(images[r + 3 * c]))
    assert not list(tmp_path.glob('.*tmp*'))


def test_unbalanced_or_unknown_classes_are_refused(models, tmp_path):
    with pytest.raises(ValueError, match='multiple of the 3 classes'):
        _sample(models, tmp_path, num=7)
    with pytest.raises(ValueError, match='not in'):
        _sample(models, tmp_path, classes=[0, 3])
    record = _sample(models, tmp_path / 'two', num=4, classes=[2, 0])
    assert record['per_class'] == {'2': 2, '0': 2}


def test_resume_after_interruption_and_rerun_does_nothing(models, tmp_path,
                                                          monkeypatch):
    reference = _sample(models, tmp_path / 'ref')
    out = tmp_path / 'run'
    real_write = shard_io.write_shard
    written = []

    def killed_after_one(path, **arrays):
        if written:
            raise KeyboardInterrupt   # the run is killed while sampling
        written.append(path)
        return real_write(path, **arrays)

    monkeypatch.setattr('fqzoo.generation.sampler.write_shard',
                        killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        _sample(models, out)
    monkeypatch.undo()
    assert sorted(p.name for p in out.glob('shard_*')) == ['shard_00000.npz']
    stamps = _stamps(out)
    record = _sample(models, out)
    assert _stamps(out)['shard_00000.npz'] == stamps['shard_00000.npz']
    assert record['run']['drawn_shards'] == 1
    with np.load(out / 'samples.npz') as a, \
            np.load(tmp_path / 'ref' / 'samples.npz') as b:
        np.testing.assert_array_equal(a['arr_0'], b['arr_0'])
        np.testing.assert_array_equal(a['arr_1'], b['arr_1'])
    assert record['settings'] == reference['settings']

    # a finished run started again writes nothing
    stamps = _stamps(out)
    assert _sample(models, out) == record
    assert _stamps(out) == stamps

    # a truncated shard is drawn again, the other one is kept
    path = out / 'shard_00001.npz'
    path.write_bytes(path.read_bytes()[:100])
    again = _sample(models, out)
    assert again['run']['drawn_shards'] == 1
    after = _stamps(out)
    assert after['shard_00000.npz'] == stamps['shard_00000.npz']
    assert after['shard_00001.npz'] != stamps['shard_00001.npz']
    with np.load(out / 'samples.npz') as a, \
            np.load(tmp_path / 'ref' / 'samples.npz') as b:
        np.testing.assert_array_equal(a['arr_0'], b['arr_0'])


def test_other_settings_are_refused(models, tmp_path):
    _sample(models, tmp_path, num=3, shard_size=3)
    with pytest.raises(ValueError, match=r'cfg_scale: 2\.0 in the folder, '
                       r'now 1\.5.*other settings|other settings.*cfg_scale'):
        _sample(models, tmp_path, num=3, shard_size=3, cfg_scale=1.5)
    with pytest.raises(ValueError, match='num.*seed|seed'):
        _sample(models, tmp_path, num=6, shard_size=3, seed=1)
    # batch size and caches do not change the samples: accepted
    _sample(models, tmp_path, num=3, shard_size=3, batch_size=3,
            use_cache=False)


def test_processes_share_the_shards(models, tmp_path, monkeypatch):
    """Two ranks (threads with their own models, a real barrier) draw
    disjoint shards; rank 0 assembles what one process would."""
    single = _sample(models, tmp_path / 'one', num=12, shard_size=3)
    barrier = threading.Barrier(2, timeout=60)
    results, drawn = {}, {0: [], 1: []}
    real_write = shard_io.write_shard

    def write(path, **arrays):
        drawn[int(threading.current_thread().name)].append(path.name)
        return real_write(path, **arrays)

    monkeypatch.setattr('fqzoo.generation.sampler.write_shard', write)
    rank_models = [(init_generator(models['gen_cfg'], models['gen_ckpt']),
                    init_tokenizer(models['tok_cfg'], models['tok_ckpt']))
                   for _ in range(2)]

    def run(rank: int) -> None:
        results[rank] = run_sampling(
            *rank_models[rank], tmp_path / 'two', num=12, seed=10,
            batch_size=2, shard_size=3, rank=rank, world_size=2,
            barrier=barrier.wait, progress=False, **SAMPLING)

    threads = [threading.Thread(target=run, args=(r,), name=str(r))
               for r in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results[1] is None
    assert sorted(drawn[0]) == ['shard_00000.npz', 'shard_00002.npz']
    assert sorted(drawn[1]) == ['shard_00001.npz', 'shard_00003.npz']
    assert results[0]['run']['world_size'] == 2
    assert results[0]['settings'] == single['settings']
    with np.load(tmp_path / 'one' / 'samples.npz') as a, \
            np.load(tmp_path / 'two' / 'samples.npz') as b:
        np.testing.assert_array_equal(a['arr_0'], b['arr_0'])


def test_sample_tool(models, tmp_path, monkeypatch, capsys):
    """The tool's own code, in this process (its imports are loaded)."""
    out = tmp_path / 'samples'
    monkeypatch.setattr(sys, 'argv', [
        'sample.py', str(models['gen_cfg']), str(models['gen_ckpt']),
        '--tokenizer', str(models['tok_cfg']), str(models['tok_ckpt']),
        '--num', '4', '--classes', '1', '2', '--cfg-scale', '1.5', '2.0',
        '--top-k', '4', '--batch-size', '3', '--seed', '3', '--out',
        str(out), '--device', 'cpu'])
    runpy.run_path(str(REPO / 'tools' / 'sample.py'), run_name='__main__')
    assert 'tokens/s' in capsys.readouterr().out
    record = json.loads((out / 'sampling.json').read_text())
    assert record['sampling']['cfg_scale'] == [1.5, 2.0]
    assert record['sampling']['top_k'] == 4
    assert record['sampling']['classes'] == [1, 2]
    digest = hashlib.sha256(Path(models['gen_ckpt']).read_bytes()).hexdigest()
    assert record['generator']['checkpoint'] == dict(
        path=str(Path(models['gen_ckpt']).resolve()), sha256=digest)
    assert record['settings']['generator']['checkpoint']['sha256'] == digest
    assert record['tokenizer']['model']['quantizer']['num_codebooks'] == 2
    assert record['eval_command'].startswith(
        f'python tools/eval_generation.py {out}/samples.npz')
    with np.load(out / 'samples.npz') as data:
        assert data['arr_0'].shape == (4, 16, 16, 3)
        assert data['arr_1'].tolist() == [1, 2, 1, 2]
    _, expected, _ = sample_batch(models['generator'], models['tokenizer'],
                                  np.array([2]), np.array([3 + 3]),
                                  cfg_scale=[1.5, 2.0], top_k=4)
    with np.load(out / 'samples.npz') as data:
        np.testing.assert_array_equal(data['arr_0'][3], expected[0])
    assert os.path.isfile(out / 'grid.png')


@pytest.mark.slow
def test_torchrun_two_cpu_processes(models, tmp_path):
    """``torchrun`` with two gloo processes gives what one process gives."""
    args = [str(models['gen_cfg']), str(models['gen_ckpt']), '--tokenizer',
            str(models['tok_cfg']), str(models['tok_ckpt']),
            '--num-samples', '6', '--shard-size', '2', '--batch-size', '2',
            '--cfg-scale', '2.0', '--seed', '4', '--device', 'cpu']
    run_tool([sys.executable, '-m', 'torch.distributed.run', '--standalone',
              '--nproc_per_node', '2', 'tools/sample.py', *args, '--out',
              str(tmp_path / 'two'), '--launcher', 'pytorch'])
    record = json.loads((tmp_path / 'two' / 'sampling.json').read_text())
    assert record['run']['world_size'] == 2
    assert record['run']['drawn_shards'] == 3
    single = run_sampling(models['generator'], models['tokenizer'],
                          tmp_path / 'one', num=6, seed=4, cfg_scale=2.0,
                          shard_size=2, progress=False)
    assert single['settings']['num'] == record['settings']['num']
    with np.load(tmp_path / 'one' / 'samples.npz') as a, \
            np.load(tmp_path / 'two' / 'samples.npz') as b:
        np.testing.assert_array_equal(a['arr_0'], b['arr_0'])
        np.testing.assert_array_equal(a['arr_1'], b['arr_1'])


def test_eval_command_names_the_reference():
    tool = runpy.run_path(str(REPO / 'tools' / 'sample.py'))
    fmnist = Config(dict(test_dataloader=dict(
        dataset=dict(type='FashionMNIST', split='test'))))
    command = tool['eval_command'](Path('out dir'), fmnist)
    assert command.startswith("python tools/eval_generation.py 'out dir/"
                              "samples.npz' --ref fashion-mnist:test")
    assert '--fmnist-classifier' in command
    assert 'VIRTUAL_imagenet256_labeled.npz' in tool['eval_command'](
        Path('out'), Config(dict()))
