"""fqzoo.generation.released: sampling by the released protocol into a
resumable folder (the sample scripts of LlamaGen and FAR: one random stream
per release process, random labels, their sample order, the bicubic resize
and their uint8 conversion), checked against the streams drawn by hand."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import run_tool, write_tiny_config

from fqzoo.apis import init_generator, init_tokenizer
from fqzoo.generation.released import (
    batches_per_stream,
    chunk_path,
    draw_labels,
    eval_side,
    released_uint8,
    run_released_sampling,
    sample_index,
    stream_seed,
)

TOKENIZER = '''_base_ = ['./tiny_vq.py']
model = dict(
    encoder=dict(ch_mult=(1, 2, 2)), decoder=dict(ch_mult=(1, 2, 2)),
    quantizer=dict(_delete_=True, type='FactorizedQuantizer', num_codebooks=2,
                   quantizer=dict(type='VectorQuantizer', codebook_size=16,
                                  embed_dim=4)))
'''
GENERATOR = '''model = dict(
    type='AutoregressiveGenerator', num_classes=5,
    backbone=dict(type='LlamaGenBackbone', width=16, num_layers=1,
                  num_heads=2),
    head=dict(type='FactorizedARHead', num_layers=1, num_heads=2),
    grid_size=(4, 4), codebook_sizes=[16, 16])
'''
SAMPLING = dict(cfg_scale=2.0, temperature=0.8, top_k=[0, 8], top_p=0.9)


@pytest.fixture(scope='module')
def models(tmp_path_factory) -> dict:
    """A random FQ tokenizer (16x16 images, 2 x 16 codes on a 4x4 grid)
    and a random FAR generator of 5 classes over its tokens."""
    root = tmp_path_factory.mktemp('models')
    write_tiny_config(root / 'tiny_vq.py', root / 'w')
    (root / 'tok.py').write_text(TOKENIZER)
    (root / 'gen.py').write_text(GENERATOR)
    torch.manual_seed(0)
    torch.save(dict(state_dict=init_tokenizer(root / 'tok.py').state_dict()),
               root / 'tok.pth')
    gen = init_generator(root / 'gen.py')
    with torch.no_grad():   # zero-initialised outputs would sample uniformly
        for param in gen.parameters():
            param.add_(torch.randn_like(param) * 0.3)
    torch.save(dict(state_dict=gen.state_dict()), root / 'gen.pth')
    return dict(root=root,
                tokenizer=init_tokenizer(root / 'tok.py', root / 'tok.pth'),
                generator=init_generator(root / 'gen.py', root / 'gen.pth'))


def by_hand(models, *, num, seed, batch_size, streams, eval_size='auto'):
    """The release scripts' loop for each rank: seed, then per batch
    randint labels and generate; sample number i * W + r + total."""
    gen, tok = models['generator'], models['tokenizer']
    total = -(-num // (batch_size * streams)) * batch_size * streams
    labels = np.zeros(total, np.int64)
    tokens = np.zeros((total, 2, 4, 4), np.int64)
    images = [None] * total
    for rank in range(streams):
        torch.manual_seed(seed * streams + rank)
        done = 0
        for _ in range(total // (batch_size * streams)):
            c = torch.randint(0, 5, (batch_size, ))
            t = gen.generate(c, protocol='released', **SAMPLING)
            x = tok.decode(t)
            side = eval_side(eval_size, x.shape[-1])
            if side != x.shape[-1]:
                x = F.interpolate(x, size=(side, side), mode='bicubic')
            x = torch.clamp(127.5 * x + 128.0, 0, 255).permute(0, 2, 3, 1) \
                .to(torch.uint8).numpy()
            for i in range(batch_size):
                index = i * streams + rank + done
                labels[index], tokens[index], images[index] = c[i], t[i], x[i]
            done += batch_size * streams
    return labels[:num], tokens[:num], np.stack(images[:num])


def run(models, out, **kwargs):
    args = dict(num=10, seed=3, batch_size=3, streams=2, chunk_size=1,
                progress=False, **SAMPLING)
    args.update(kwargs)
    return run_released_sampling(models['generator'], models['tokenizer'],
                                 out, **args)


def test_order_seeds_and_labels_by_hand():
    assert stream_seed(5, 3, 8) == 43
    assert batches_per_stream(50000, 32, 8) == 196   # 50176 drawn
    assert sample_index(1, 2, 3, 4).tolist() == [14, 18, 22]
    every = np.concatenate([sample_index(b, r, 3, 4) for b in range(5)
                            for r in range(4)])
    assert sorted(every.tolist()) == list(range(60))
    torch.manual_seed(11)
    expected = torch.randint(0, 1000, (32, ))
    assert torch.equal(draw_labels(torch.Generator().manual_seed(11), 32,
                                   1000), expected)


def test_uint8_conversion_and_resize_by_hand():
    # floor(clamp(127.5 x + 128)): -1.5 -> 0, -1 -> 0 (0.5), 0 -> 128,
    # 0.5 -> 191 (191.75), 1 -> 255 (255.5), 1.2 -> 255
    x = torch.tensor([-1.5, -1.0, 0.0, 0.5, 1.0, 1.2]).reshape(1, 1, 1, 6)
    out = released_uint8(x.expand(1, 3, 6, 6), None)
    assert out[0, 0, :, 0].tolist() == [0, 0, 128, 191, 255, 255]
    # bicubic 384 -> 256 of a horizontal ramp: output column j samples the
    # source at 1.5 (j + 0.5) - 0.5, where a cubic kernel reproduces a
    # linear function (away from the border)
    ramp = (torch.arange(384.0) / 383 * 1.6 - 0.8).expand(1, 3, 384, 384)
    out = released_uint8(ramp, 'auto')
    assert out.shape == (1, 256, 256, 3)
    cols = np.arange(2, 254)
    expected = np.floor(127.5 * ((1.5 * (cols + 0.5) - 0.5) / 383 * 1.6
                                 - 0.8) + 128)
    assert np.abs(out[0, 100, cols, 0] - expected).max() <= 1
    assert eval_side('auto', 32) == 32 and eval_side(None, 384) == 384
    assert eval_side(64, 32) == 64
    with pytest.raises(ValueError, match="'auto', None"):
        eval_side('big', 32)


def test_samples_equal_the_release_loop_by_hand(models, tmp_path):
    record = run(models, tmp_path, info=dict(note='x'))
    labels, tokens, images = by_hand(models, num=10, seed=3, batch_size=3,
                                     streams=2)
    with np.load(tmp_path / 'samples.npz') as data:
        np.testing.assert_array_equal(data['arr_1'], labels)
        np.testing.assert_array_equal(data['arr_0'], images)
    assert len(set(labels.tolist())) > 1
    chunk = np.load(chunk_path(tmp_path, 1, 1))   # stream 1, batch 1
    assert chunk['index'].tolist() == [7, 9, 11]
    np.testing.assert_array_equal(chunk['tokens'][:2], tokens[[7, 9]])
    assert record == json.loads((tmp_path / 'sampling.json').read_text())
    assert record['protocol'] == 'released' and record['num'] == 10
    assert record['sampling']['drawn'] == 12
    assert record['per_class'] == {str(c): int((labels == c).sum())
                                   for c in range(5)}
    assert record['note'] == 'x'


def test_resume_and_process_split_give_the_same_samples(models, tmp_path):
    whole = tmp_path / 'whole'
    run(models, whole)
    reference = (whole / 'samples.npz').read_bytes()
    # a run that stopped after stream 0's first chunk, resumed
    part = tmp_path / 'part'
    run(models, part)
    for path in [chunk_path(part, 0, 1), chunk_path(part, 1, 0),
                 chunk_path(part, 1, 1), part / 'samples.npz',
                 part / 'sampling.json']:
        path.unlink()
    record = run(models, part)
    assert (part / 'samples.npz').read_bytes() == reference
    assert record['run']['drawn_streams'] == 2
    # two processes, each drawing its stream (rank 1 first, then rank 0)
    split = tmp_path / 'split'
    split.mkdir()   # rank 0 makes it while rank 1 waits at a barrier
    assert run(models, split, rank=1, world_size=2) is None
    run(models, split, rank=0, world_size=2)
    assert (split / 'samples.npz').read_bytes() == reference
    # a finished run started again draws nothing
    stamp = (whole / 'samples.npz').stat().st_mtime_ns
    run(models, whole)
    assert (whole / 'samples.npz').stat().st_mtime_ns == stamp


def test_other_settings_are_refused(models, tmp_path):
    run(models, tmp_path)
    with pytest.raises(ValueError, match='batch_size: 3 in the folder, '
                       'now 4'):
        run(models, tmp_path, batch_size=4)


def test_sample_tool_released_protocol(models, tmp_path):
    root = models['root']
    out = tmp_path / 'out'
    proc = run_tool(['tools/sample.py', str(root / 'gen.py'),
                     str(root / 'gen.pth'), '--tokenizer',
                     str(root / 'tok.py'), str(root / 'tok.pth'),
                     '--protocol', 'released', '--num', '10', '--seed', '3',
                     '--batch-size', '3', '--streams', '2', '--shard-size',
                     '3', '--cfg-scale', '2.0', '--temperature', '0.8',
                     '--top-k', '0', '8', '--top-p', '0.9', '--out',
                     str(out), '--device', 'cpu'])
    assert '10 samples' in proc.stdout
    labels, _, images = by_hand(models, num=10, seed=3, batch_size=3,
                                streams=2)
    with np.load(out / 'samples.npz') as data:
        np.testing.assert_array_equal(data['arr_1'], labels)
        np.testing.assert_array_equal(data['arr_0'], images)
    proc = run_tool(['tools/sample.py', str(root / 'gen.py'),
                     str(root / 'gen.pth'), '--tokenizer',
                     str(root / 'tok.py'), str(root / 'tok.pth'),
                     '--protocol', 'released', '--num', '10', '--classes',
                     '1', '--out', str(tmp_path / 'c')], check=False)
    assert proc.returncode != 0 and 'every class' in proc.stderr


def test_fqzoo_protocol_takes_cfg_interval_and_eval_size(models, tmp_path):
    from fqzoo.generation.sampler import run_sampling, sample_batch
    gen, tok = models['generator'], models['tokenizer']
    record = run_sampling(gen, tok, tmp_path, num=5, seed=1, batch_size=5,
                          cfg_scale=3.0, cfg_interval=2, eval_size=24,
                          progress=False)
    assert record['sampling']['cfg_interval'] == 2
    assert record['sampling']['eval_size'] == 24
    assert record['settings']['eval_size'] == 24
    tokens, images, _ = sample_batch(gen, tok, np.arange(5), np.arange(1, 6),
                                     cfg_scale=3.0, cfg_interval=2)
    with np.load(tmp_path / 'samples.npz') as data:
        assert data['arr_0'].shape == (5, 24, 24, 3)
    expected = F.interpolate(tok.decode(tokens), size=(24, 24),
                             mode='bicubic')
    expected = ((expected + 1) * 127.5).round().clamp(0, 255).byte()
    np.testing.assert_array_equal(
        np.load(tmp_path / 'samples.npz')['arr_0'],
        expected.permute(0, 2, 3, 1).numpy())
    # guidance stopped after position 3: other tokens than guiding all
    every, _, _ = sample_batch(gen, tok, np.arange(5), np.arange(1, 6),
                               cfg_scale=3.0)
    assert not torch.equal(every, tokens)
    assert torch.equal(every[..., 0, :], tokens[..., 0, :])  # t = 0 ... 3
