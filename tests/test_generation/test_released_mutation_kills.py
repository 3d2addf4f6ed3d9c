"""Checks written from a mutation run over fqzoo.generation.released (the
release scripts' sampling protocol): the streams, chunk files, bar, timings,
grids and ``sampling.json`` of a run, each against a value computed by hand.

The run is driven by a fake generator and tokenizer (tiny modules with one
parameter): the generator draws its tokens from the stream it is given, as
the real one does, and the tokenizer paints every image one flat colour
chosen by its tokens, so a bicubic resize keeps it and every run here takes
milliseconds.
"""
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from progress_recorder import Bar

from fqzoo.errors import InputError
from fqzoo.generation import released
from fqzoo.generation.released import (
    batches_per_stream,
    chunk_batches,
    chunk_path,
    eval_side,
    run_released_sampling,
)

SIDE = 4
GRID = (2, 3)


class FakeGenerator(torch.nn.Module):
    """``num_classes`` classes, a 2 x 3 grid of 2 sub-tokens of 16 and 8
    codes (int16 indices); tokens ``randint(0, 8)`` from the stream."""
    grid_size = GRID
    codebook_sizes = [16, 8]

    def __init__(self, num_classes: int = 5):
        super().__init__()
        self.num_classes = num_classes
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.calls = []

    def generate(self, labels, rng=None, **sampling):
        self.calls.append(dict(labels=labels.tolist(), **sampling))
        return torch.randint(0, 8, (len(labels), 2, *GRID), generator=rng,
                             device=rng.device)


def flat(tokens) -> np.ndarray:
    """The uint8 value of the images of ``tokens`` ``[B, 2, h, w]``:
    ``30 * t[0, 0, 0] + 4 * t[1, 0, 0]``."""
    tokens = np.asarray(tokens)
    return 30 * tokens[:, 0, 0, 0] + 4 * tokens[:, 1, 0, 0]


class FakeTokenizer(torch.nn.Module):
    """Image of tokens ``t``: one flat colour whose uint8 value
    (``floor(127.5 x + 128)``) is :func:`flat` (x sits half a level above
    it, so rounding errors of a resize keep the value)."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def decode(self, tokens):
        level = torch.from_numpy(flat(tokens.numpy())).double()
        value = ((level + 0.5 - 128.0) / 127.5).float()
        return value.view(-1, 1, 1, 1).expand(-1, 3, SIDE, SIDE).clone()


class Clock:
    """``perf_counter``: draw_batch's three reads of batch k are
    ``10 k``, ``10 k + 1`` and ``10 k + 1.25`` (1 s generating, 0.25 s
    decoding); ``time``: 100, 103.51234, 100 ... (3.51234 s a run)."""

    def __init__(self):
        self.reads, self.walls = 0, 0

    def perf_counter(self):
        batch, pos = divmod(self.reads, 3)
        self.reads += 1
        return 10.0 * batch + (0.0, 1.0, 1.25)[pos]

    def time(self):
        self.walls += 1
        return 103.51234 if self.walls % 2 == 0 else 100.0


@pytest.fixture
def fakes(monkeypatch):
    Bar.made = []
    monkeypatch.setattr(released, 'tqdm', Bar)
    monkeypatch.setattr(released, 'time', Clock())
    pairs = []
    monkeypatch.setattr(released, 'check_pairing',
                        lambda *args: pairs.append(args))
    return dict(pairs=pairs)


def by_hand(num_classes, *, num, seed, batch_size, streams):
    """The release loop: stream r seeded ``seed * streams + r``, then per
    batch ``randint(0, C, (n,))`` labels and the tokens; sample
    ``j n W + i W + r``. Returns labels and tokens of every drawn sample
    (past num too)."""
    batches = -(-num // (batch_size * streams))
    total = batches * batch_size * streams
    labels = np.full(total, -1, np.int64)
    tokens = np.full((total, 2, *GRID), -1, np.int64)
    for r in range(streams):
        rng = torch.Generator().manual_seed(seed * streams + r)
        for j in range(batches):
            c = torch.randint(0, num_classes, (batch_size, ), generator=rng)
            t = torch.randint(0, 8, (batch_size, 2, *GRID), generator=rng)
            for i in range(batch_size):
                n = j * batch_size * streams + i * streams + r
                labels[n], tokens[n] = c[i], t[i]
    assert (labels >= 0).all()
    return labels, tokens


def run(out, gen=None, **kwargs):
    args = dict(num=10, seed=3, batch_size=2, streams=2, chunk_size=2,
                eval_size=2, top_k=4)
    args.update(kwargs)
    return run_released_sampling(gen or FakeGenerator(), FakeTokenizer(),
                                 out, **args)


def png_shape(path) -> tuple:
    return np.asarray(Image.open(path)).shape


# ------------------------------------------------------------ helpers ----


def test_chunk_batches_step_by_the_chunk_size():
    assert chunk_batches(5, 2) == [(0, 2), (2, 4), (4, 5)]
    assert chunk_batches(6, 3) == [(0, 3), (3, 6)]
    assert chunk_batches(3, 5) == [(0, 3)]


def test_sync_waits_for_cuda_devices_only(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, 'synchronize', calls.append)
    released._sync(torch.device('cpu'))
    assert calls == []
    released._sync(torch.device('cuda', 1))
    assert calls == [torch.device('cuda', 1)]


class _Made(Exception):
    pass


def test_stream_generator_lives_on_the_generators_device(monkeypatch,
                                                         tmp_path):
    # the docstring: each stream is one torch.Generator on the generator's
    # device (on CUDA, the stream of torch.manual_seed)
    made = []

    def recorder(device=None):
        made.append(device)
        raise _Made

    gen = FakeGenerator()
    monkeypatch.setattr(gen, 'parameters', lambda: iter(
        [SimpleNamespace(device=torch.device('cuda', 0))]))
    monkeypatch.setattr(torch, 'Generator', recorder)
    with pytest.raises(_Made):
        released.draw_stream(gen, FakeTokenizer(), tmp_path, 0, seed=1,
                             streams=1, batch_size=1, batches=1,
                             chunk_size=1, eval_size=None, sampling={})
    assert made == [torch.device('cuda', 0)]


# ---------------------------------------------------------------- run ----


def test_run_samples_chunks_and_record_by_hand(fakes, tmp_path):
    gen = FakeGenerator()
    record = run(tmp_path, gen)
    labels, tokens = by_hand(5, num=10, seed=3, batch_size=2, streams=2)
    # 3 batches a stream (12 drawn), chunks of batches [0, 2) and [2, 3)
    with np.load(tmp_path / 'samples.npz') as data:
        np.testing.assert_array_equal(data['arr_1'], labels[:10])
        images = data['arr_0']
    # eval_size 2: the 4-px images resized to 2 px, colour kept
    assert images.shape == (10, 2, 2, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(
        images, np.broadcast_to(flat(tokens[:10])[:, None, None, None],
                                (10, 2, 2, 3)))
    assert [c['labels'] for c in gen.calls] == [
        labels[[0, 2]].tolist(), labels[[4, 6]].tolist(),
        labels[[8, 10]].tolist(), labels[[1, 3]].tolist(),
        labels[[5, 7]].tolist(), labels[[9, 11]].tolist()]
    chunk = np.load(chunk_path(tmp_path, 1, 0))
    assert chunk['index'].tolist() == [1, 3, 5, 7]
    assert chunk['tokens'].dtype == np.int16
    np.testing.assert_array_equal(chunk['tokens'], tokens[[1, 3, 5, 7]])
    # two batches of 1 s generating and 0.25 s decoding
    assert chunk['seconds'].tolist() == [2.0, 0.5]
    assert np.load(chunk_path(tmp_path, 1, 1))['seconds'].tolist() == [
        1.0, 0.25]
    # the bar counts every batch drawn
    (bar,) = Bar.made
    assert bar.updates == [2] * 6
    assert record == json.loads((tmp_path / 'sampling.json').read_text())
    assert record['samples'] == 'samples.npz' and record['num'] == 10
    assert record['image_shape'] == [2, 2, 3]
    assert record['token_shape'] == [2, *GRID]
    assert record['token_dtype'] == 'int16'
    # 6 batches over both streams: 6 s + 1.5 s for 12 images of 6 tokens
    assert record['timings'] == dict(
        generate_seconds=6.0, decode_seconds=1.5,
        images_per_s=round(12 / 7.5, 3), tokens_per_s=12.0,
        note="summed over every stream's chunks, including the samples "
             'drawn past num; a token is one position')
    present = sorted(set(labels[:10].tolist()))
    assert record['grids'] == [f'grid_class_{c}.png' for c in present] + [
        'grid.png']
    for c in present:   # 2-px images upscaled 32 times, padding 2
        n = int((labels[:10] == c).sum())
        if n == 1:      # make_grid returns one image as it is
            continue
        assert png_shape(tmp_path / f'grid_class_{c}.png') == (
            66 + 2, min(n, 8) * 66 + 2, 3)


def test_one_stream_one_chunk_record(fakes, tmp_path):
    # one stream and one chunk: only stream_000_00000.npz exists
    record = run(tmp_path, num=5, batch_size=3, streams=1, chunk_size=4,
                 eval_size=None)
    labels, tokens = by_hand(5, num=5, seed=3, batch_size=3, streams=1)
    assert sorted(p.name for p in tmp_path.glob('stream_*')) == [
        'stream_000_00000.npz']
    assert record['image_shape'] == [SIDE, SIDE, 3]
    assert record['token_shape'] == [2, *GRID]
    assert record['token_dtype'] == 'int16'
    assert record['timings']['generate_seconds'] == 2.0
    with np.load(tmp_path / 'samples.npz') as data:
        np.testing.assert_array_equal(data['arr_1'], labels[:5])
        np.testing.assert_array_equal(data['arr_0'][:, 0, 0, 0],
                                      flat(tokens[:5]))


def test_resumed_chunks_count_on_the_bar_and_keep_the_stream(fakes,
                                                            tmp_path):
    run(tmp_path)
    reference = (tmp_path / 'samples.npz').read_bytes()
    for path in (chunk_path(tmp_path, 0, 1), chunk_path(tmp_path, 1, 1),
                 tmp_path / 'samples.npz', tmp_path / 'sampling.json'):
        path.unlink()
    Bar.made = []
    run(tmp_path)
    assert (tmp_path / 'samples.npz').read_bytes() == reference
    # each stream: its first chunk (4 samples) read back, one batch drawn
    (bar,) = Bar.made
    assert bar.updates == [4, 2, 4, 2]


def test_draw_stream_without_a_bar_skips_complete_chunks(tmp_path):
    gen, tok = FakeGenerator(), FakeTokenizer()
    args = dict(seed=2, streams=1, batch_size=2, batches=2, chunk_size=1,
                eval_size=None, sampling={})
    released.draw_stream(gen, tok, tmp_path, 0, **args)
    second = chunk_path(tmp_path, 0, 1)
    expected = np.load(second)['tokens']
    second.unlink()
    released.draw_stream(gen, tok, tmp_path, 0, **args)   # bar None
    np.testing.assert_array_equal(np.load(second)['tokens'], expected)
    assert len(gen.calls) == 3


def test_grids_skip_classes_past_50(fakes, tmp_path):
    # 60 classes: grids for the first 50 only, the others are not looked up
    record = run(tmp_path, FakeGenerator(60), num=40, batch_size=4,
                 streams=2, chunk_size=5, seed=0)
    labels, _ = by_hand(60, num=40, seed=0, batch_size=4, streams=2)
    kept = labels[:40]
    assert (kept >= 50).any() and (kept == 50).any()
    present = sorted(set(c for c in kept.tolist() if c < 50))
    assert record['grids'] == [f'grid_class_{c}.png' for c in present] + [
        'grid.png']
    assert not (tmp_path / 'grid_class_50.png').exists()
    assert record['per_class'] == {str(c): int((kept == c).sum())
                                   for c in range(60)}


def test_class_grids_hold_64_samples(fakes, tmp_path):
    # one class, 70 samples: its grid holds the first 64 (8 rows of 8)
    record = run(tmp_path, FakeGenerator(1), num=70, batch_size=35,
                 streams=1, chunk_size=1, eval_size=None)
    assert record['grids'] == ['grid_class_0.png', 'grid.png']
    # 4-px images upscaled 16 times, padding 2
    assert png_shape(tmp_path / 'grid_class_0.png') == (8 * 66 + 2,
                                                         8 * 66 + 2, 3)


def test_run_defaults_from_the_docstring(fakes, tmp_path):
    # cfg_scale 1, temperature 1, top_k 0, top_p 1, cfg_interval -1,
    # use_cache, seed 0, batch_size 32, streams = world_size (1),
    # eval_size 'auto', chunk_size 32, rank 0, progress on
    gen = FakeGenerator()
    record = run_released_sampling(gen, FakeTokenizer(), tmp_path, num=33)
    labels, tokens = by_hand(5, num=33, seed=0, batch_size=32, streams=1)
    assert [c['labels'] for c in gen.calls] == [labels[:32].tolist(),
                                                labels[32:].tolist()]
    assert all(c == dict(c, cfg_scale=1.0, temperature=1.0, top_k=0,
                         top_p=1.0, cfg_interval=-1, use_cache=True,
                         protocol='released') and len(c) == 8
               for c in gen.calls)
    with np.load(tmp_path / 'samples.npz') as data:
        np.testing.assert_array_equal(data['arr_1'], labels[:33])
        assert data['arr_0'].shape == (33, SIDE, SIDE, 3)   # 4 px kept
        np.testing.assert_array_equal(data['arr_0'][:, 1, 2, 0],
                                      flat(tokens[:33]))
    (bar,) = Bar.made
    assert bar.kwargs == dict(total=64, unit='img', disable=False,
                              dynamic_ncols=True)
    sampling = dict(cfg_scale=1.0, temperature=1.0, top_k=0, top_p=1.0,
                    cfg_interval=-1)
    assert record['settings'] == dict(
        protocol='released', num=33, seed=0, batch_size=32, streams=1,
        eval_size='auto', chunk_size=32, rng_device='cpu', **sampling)
    assert record['sampling'] == dict(
        sampling, use_cache=True, seed=0, batch_size=32, streams=1,
        eval_size='auto', num=33, drawn=64,
        labels='torch.randint(0, num_classes, (batch_size,)) from stream '
               'r, seeded seed * streams + r',
        order='batch * batch_size * streams + row * streams + stream')
    assert record['run'] == dict(world_size=1, drawn_streams=1,
                                 wall_seconds=3.512)
    assert record['protocol'] == 'released'
    assert record['eval_command'] is None
    assert set(record) == {
        'protocol', 'sampling', 'settings', 'run', 'eval_command',
        'samples', 'num', 'per_class', 'image_shape', 'token_shape',
        'token_dtype', 'timings', 'grids'}
    assert fakes['pairs'] == [(gen, fakes['pairs'][0][1], None)]


def test_run_default_chunk_size_is_32_batches(fakes, tmp_path):
    record = run_released_sampling(FakeGenerator(), FakeTokenizer(),
                                   tmp_path, num=33, batch_size=1,
                                   progress=False)
    assert sorted(p.name for p in tmp_path.glob('stream_*')) == [
        'stream_000_00000.npz', 'stream_000_00001.npz']
    assert np.load(chunk_path(tmp_path, 0, 1))['index'].tolist() == [32]
    assert record['settings']['chunk_size'] == 32
    (bar,) = Bar.made
    assert bar.kwargs['disable'] is True


def test_run_records_identity_info_and_eval_command(fakes, tmp_path):
    gen, tok = FakeGenerator(), FakeTokenizer()
    info = dict(generator=dict(path='g.pth'), note='x')
    record = run_released_sampling(
        gen, tok, tmp_path, num=3, batch_size=2, cfg_scale=1.5,
        temperature=0.7, top_k=3, top_p=0.8, cfg_interval=2,
        use_cache=False, seed=4, eval_size=None, chunk_size=1,
        identity=dict(generator='abc'), info=info,
        eval_command='python eval.py', progress=False)
    sampling = dict(cfg_scale=1.5, temperature=0.7, top_k=3, top_p=0.8,
                    cfg_interval=2)
    assert all(c == dict(sampling, labels=c['labels'], use_cache=False,
                         protocol='released') for c in gen.calls)
    assert record['settings'] == dict(
        generator='abc', protocol='released', num=3, seed=4, batch_size=2,
        streams=1, eval_size=None, chunk_size=1, rng_device='cpu',
        **sampling)
    assert record['sampling']['use_cache'] is False
    assert record['sampling']['seed'] == 4
    assert record['sampling']['eval_size'] is None
    assert record['sampling']['drawn'] == 4
    assert record['generator'] == dict(path='g.pth')
    assert record['note'] == 'x' and record['protocol'] == 'released'
    assert record['eval_command'] == 'python eval.py'
    assert fakes['pairs'] == [(gen, tok, info)]
    labels, _ = by_hand(5, num=3, seed=4, batch_size=2, streams=1)
    assert record['per_class'] == {str(c): int((labels[:3] == c).sum())
                                   for c in range(5)}


def test_run_split_over_processes(fakes, tmp_path, monkeypatch):
    # rank 1 of 2 draws stream 1 (3 batches of 2), no bar, returns None
    gen = FakeGenerator()
    tmp_path.mkdir(exist_ok=True)
    assert run(tmp_path, gen, rank=1, world_size=2) is None
    labels, _ = by_hand(5, num=10, seed=3, batch_size=2, streams=2)
    assert [c['labels'] for c in gen.calls] == [
        labels[[1, 3]].tolist(), labels[[5, 7]].tolist(),
        labels[[9, 11]].tolist()]
    (bar,) = Bar.made
    assert bar.kwargs == dict(total=6, unit='img', disable=True,
                              dynamic_ncols=True)
    Bar.made = []
    monkeypatch.setattr(released, 'time', Clock())
    record = run(tmp_path, rank=0, world_size=2)
    (bar,) = Bar.made
    assert bar.kwargs['total'] == 6 and bar.kwargs['disable'] is False
    # rank 0 found stream 1 done: it drew stream 0 alone
    assert record['run'] == dict(world_size=2, drawn_streams=1,
                                 wall_seconds=3.512)
    assert record['settings']['streams'] == 2
    with np.load(tmp_path / 'samples.npz') as data:
        np.testing.assert_array_equal(data['arr_1'], labels[:10])
    # finished: rank 1 gets None, rank 0 the record, nothing drawn
    gen = FakeGenerator()
    assert run(tmp_path, gen, rank=1, world_size=2) is None
    assert run(tmp_path, gen, rank=0, world_size=2) == record
    assert gen.calls == []


def test_finished_run_returns_its_record_or_reassembles(fakes, tmp_path):
    record = run(tmp_path)
    samples = (tmp_path / 'samples.npz').read_bytes()
    gen = FakeGenerator()
    Bar.made = []
    assert run(tmp_path, gen) == record
    assert gen.calls == [] and Bar.made == []
    # samples.npz lost: reassembled from the chunks, nothing drawn
    (tmp_path / 'samples.npz').unlink()
    again = run(tmp_path, gen)
    assert gen.calls == [] and again['run']['drawn_streams'] == 0
    assert (tmp_path / 'samples.npz').read_bytes() == samples
    # a sampling.json of other settings: reassembled too
    stale = dict(again, settings=dict(again['settings'], seed=9))
    (tmp_path / 'sampling.json').write_text(json.dumps(stale))
    third = run(tmp_path, gen)
    assert gen.calls == [] and third['settings'] == record['settings']
    assert third['run']['drawn_streams'] == 0


def test_run_refuses_bad_sizes_with_messages(tmp_path):
    gen, tok = FakeGenerator(), FakeTokenizer()
    with pytest.raises(InputError,
                       match=r'^chunk_size must be >= 1, got 0$'):
        run_released_sampling(gen, tok, tmp_path, num=2, chunk_size=0)
    with pytest.raises(InputError,
                       match=r'^num \(0\), batch_size \(32\) and streams '
                             r'\(1\) must be >= 1$'):
        run_released_sampling(gen, tok, tmp_path, num=0)
    assert not tmp_path.joinpath('sampling.json').exists()


def test_batches_per_stream_bounds():
    assert batches_per_stream(1, 1, 1) == 1
    assert batches_per_stream(8, 2, 2) == 2
    assert batches_per_stream(9, 2, 2) == 3
    assert batches_per_stream(7, 8, 3) == 1
    for args in ((0, 1, 1), (1, 0, 1), (1, 1, 0), (-3, 2, 2)):
        with pytest.raises(InputError, match=r'must be >= 1$'):
            batches_per_stream(*args)
    with pytest.raises(InputError, match=r'^num \(5\), batch_size \(0\) '
                                         r'and streams \(2\) must be'):
        batches_per_stream(5, 0, 2)


def test_eval_side_cases_and_message():
    assert eval_side('auto', 384) == 256 and eval_side('auto', 256) == 256
    assert eval_side('auto', 255) == 255 and eval_side(None, 7) == 7
    assert eval_side(1, 300) == 1 and eval_side('auto', 257) == 256
    assert isinstance(eval_side(np.int64(5), 3), int)
    for bad, shown in (('big', "'big'"), (0, '0'), (-2, '-2')):
        with pytest.raises(InputError,
                           match=r"^eval_size must be 'auto', None or a "
                                 rf'positive int, got {shown}$'):
            eval_side(bad, 32)


def test_resize_for_eval_squares_and_floats():
    # a 6 x 4 image (H x W) is resized to its width, 4 x 4
    x = torch.linspace(-1, 1, 24).view(1, 1, 6, 4).expand(2, 3, 6, 4)
    out = released.resize_for_eval(x.half(), None)
    assert out.shape == (2, 3, 4, 4) and out.dtype == torch.float32
    # the same side: returned as it is (floats), no resampling
    y = torch.rand(1, 3, 5, 5, dtype=torch.float64)
    assert torch.equal(released.resize_for_eval(y, 5), y.float())
    # a flat image stays flat at any size
    flat_image = torch.full((1, 3, 8, 8), 0.25)
    out = released.resize_for_eval(flat_image, 3)
    assert out.shape == (1, 3, 3, 3)
    assert torch.allclose(out, torch.full_like(out, 0.25))


def test_released_uint8_keeps_channels_last_in_order():
    # red 0.5, green 0, blue -1 -> floor(127.5 x + 128) = 191, 128, 0
    x = torch.tensor([0.5, 0.0, -1.0]).view(1, 3, 1, 1).expand(2, 3, 5, 5)
    x = x.clone()
    x[:, :, 1, 3] = 1.0     # row 1, column 3 white
    out = released.released_uint8(x, None)
    assert out.shape == (2, 5, 5, 3) and out.dtype == np.uint8
    assert out[1, 2, 4].tolist() == [191, 128, 0]
    assert out[1, 1, 3].tolist() == [255, 255, 255]
    assert out[1, 3, 1].tolist() == [191, 128, 0]
    # out of range: -1.5 -> 0 (-63.25), 1.2 -> 255 (281)
    x[:, :, 4, 0] = torch.tensor([-1.5, 1.2, 1.2]).view(1, 3)
    out = released.released_uint8(x, None)
    assert out[0, 4, 0].tolist() == [0, 255, 255]
    # default eval_size 'auto': 300 px -> 256 px
    big = torch.zeros(1, 3, 300, 300)
    assert released.released_uint8(big).shape == (1, 256, 256, 3)


def test_other_settings_are_refused_naming_the_samples(fakes, tmp_path):
    run(tmp_path)
    with pytest.raises(InputError,
                       match=r' holds samples made with other settings '
                             r'\(batch_size: 2 in the folder, now 4\): use '
                             r'another output folder or delete it$'):
        run(tmp_path, batch_size=4)


def test_run_waits_at_the_barrier(fakes, tmp_path):
    # the folder guard, the listing of what is left, the end of drawing
    waits = []
    run(tmp_path, barrier=lambda: waits.append(len(waits)))
    assert waits == [0, 1, 2]


def test_changed_source_redraws_every_stream(fakes, tmp_path):
    # a checkpoint changed in place (same path, other sha256): the chunks
    # and the outputs made from them (grids included) are stale
    def source(sha):
        return dict(generator=dict(path='/ckpt/g.pth', sha256=sha * 64))

    run(tmp_path, identity=source('a'))
    samples = (tmp_path / 'samples.npz').read_bytes()
    (tmp_path / 'grid_class_77.png').write_bytes(b'old')
    gen = FakeGenerator()
    record = run(tmp_path, gen, identity=source('b'))
    assert len(gen.calls) == 6 and record['run']['drawn_streams'] == 2
    assert record['settings']['generator']['sha256'] == 'b' * 64
    assert not (tmp_path / 'grid_class_77.png').exists()
    assert (tmp_path / 'samples.npz').read_bytes() == samples


def test_labels_are_drawn_on_the_streams_device(monkeypatch):
    # a stream on a GPU draws its labels there (torch.randint's device)
    seen = []

    def randint(*args, **kwargs):
        seen.append((args, kwargs))
        return torch.zeros(args[-1], dtype=torch.long)

    rng = SimpleNamespace(device=torch.device('cuda', 0))
    monkeypatch.setattr(torch, 'randint', randint)
    released.draw_labels(rng, 3, 7)
    ((_, kwargs),) = seen
    assert kwargs['generator'] is rng
    assert kwargs['device'] == torch.device('cuda', 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_released_uint8_of_cuda_images_comes_back_to_the_cpu():
    x = torch.linspace(-1.2, 1.2, 3 * 16).view(1, 3, 4, 4)
    out = released.released_uint8(x.cuda(), None)
    np.testing.assert_array_equal(out, released.released_uint8(x, None))


def test_resize_for_eval_resizes_either_side():
    # H x W = 4 x 6 to 4: 4 x 4, though H already is 4
    x = torch.rand(1, 3, 4, 6)
    assert released.resize_for_eval(x, 4).shape == (1, 3, 4, 4)
    # H x W = 3 x 5 to 3 (the channels): 3 x 3
    x = torch.rand(1, 3, 3, 5)
    assert released.resize_for_eval(x, 3).shape == (1, 3, 3, 3)
    # H x W = 5 x 3, kept size (the width, 3): 3 x 3
    x = torch.rand(1, 3, 5, 3)
    assert released.resize_for_eval(x, None).shape == (1, 3, 3, 3)


def test_resize_for_eval_is_bicubic_by_hand():
    # 4 -> 2 px: output column j samples the source at 2 j + 0.5, the
    # cubic convolution kernel (a = -0.75) at distances 1.5, 0.5, 0.5, 1.5
    # weighs -0.09375, 0.59375, 0.59375, -0.09375 (indices clamped at
    # the border); columns 0, 0.8, 0, 0.8, rows alike
    x = torch.tensor([0.0, 0.8, 0.0, 0.8]).expand(1, 3, 4, 4)
    out = released.resize_for_eval(x, 2)
    expected = torch.tensor([0.5 * 0 + 0.59375 * 0.8 - 0.09375 * 0,
                             -0.09375 * 0.8 + 0.59375 * 0 + 0.5 * 0.8])
    assert torch.allclose(out, expected.expand(1, 3, 2, 2), atol=1e-6)
