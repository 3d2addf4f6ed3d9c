"""Checks written from a mutation run over fqzoo.generation's sampling
engine (plan, shards, provenance, sampler): values computed another way,
messages users read, defaults the docstrings state.

The sampler is driven by a fake generator and tokenizer (tiny modules with
one parameter: tokens drawn from each sample's own ``torch.Generator``,
images made from the tokens), so every run here takes milliseconds.
"""
import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from progress_recorder import Bar

from fqzoo.errors import InputError
from fqzoo.generation import provenance, sampler
from fqzoo.generation import shards as shard_io
from fqzoo.generation.plan import (
    balanced_labels,
    check_classes,
    per_class_counts,
    sample_seeds,
)
from fqzoo.generation.provenance import (
    check_pairing,
    describe_model,
    plain,
)
from fqzoo.generation.shards import (
    load_json,
    npz_arrays,
    npz_complete,
    shard_complete,
    shard_path,
    write_npz_streamed,
    write_shard,
)

# --------------------------------------------------------------- plan ----


def test_check_classes_messages_name_the_argument():
    with pytest.raises(InputError, match=r'^classes must be whole numbers'):
        check_classes([0.5, 1], 3)
    with pytest.raises(InputError, match=r'^classes repeat: \[1, 2, 1\]$'):
        check_classes([1, 2, 1], 3)
    with pytest.raises(InputError, match=r'^no classes to sample$'):
        check_classes([], 3)
    with pytest.raises(InputError,
                       match=r"^classes \[5, 3\] are not in \[0, 3\) "
                             r"\(the generator's classes\)$"):
        check_classes([5, 0, 3], 3)
    assert check_classes([2, 0], 3) == [2, 0]


def test_balanced_labels_one_sample_and_its_message():
    # num == number of classes == 1 is a positive multiple
    assert balanced_labels(1, [4]).tolist() == [4]
    assert balanced_labels(2, [4, 9]).tolist() == [4, 9]
    with pytest.raises(InputError,
                       match=r'^--num 5 is not a positive multiple of the 2 '
                             r'classes asked for: every class gets num / '
                             r'classes samples$'):
        balanced_labels(5, [4, 9])


def test_labels_and_seeds_are_int64_whatever_the_input_ints():
    labels = balanced_labels(4, np.array([3, 7], dtype=np.int32))
    assert labels.dtype == np.int64 and labels.tolist() == [3, 7, 3, 7]
    seeds = sample_seeds(np.int32(2), np.int32(5), 2 ** 40)
    assert seeds.dtype == np.int64
    assert seeds.tolist() == [2 ** 40 + 2, 2 ** 40 + 3, 2 ** 40 + 4]
    # exact past 2 ** 53 (no float on the way), for unsigned indices too
    seeds = sample_seeds(np.uint64(1), np.uint64(3), 2 ** 60 + 1)
    assert seeds.dtype == np.int64
    assert seeds.tolist() == [2 ** 60 + 2, 2 ** 60 + 3]


def test_per_class_counts_by_hand():
    labels = np.array([5, 2, 5, 5, 9])
    assert per_class_counts(labels, [9, 5, 2, 0]) == [(9, 1), (5, 3),
                                                      (2, 1), (0, 0)]


# ------------------------------------------------------------- shards ----


def test_shard_path_and_read_back(tmp_path):
    assert shard_path(tmp_path, 7) == tmp_path / 'shard_00007.npz'
    assert shard_path(str(tmp_path), 12345).name == 'shard_12345.npz'
    tokens = np.arange(12, dtype=np.int16).reshape(2, 1, 2, 3)
    path = write_shard(shard_path(tmp_path, 3), tokens=tokens,
                       labels=np.array([4, 1]))
    assert path == tmp_path / 'shard_00003.npz'
    back = shard_io.read_shard(path)
    assert sorted(back) == ['labels', 'tokens']
    np.testing.assert_array_equal(back['tokens'], tokens)
    np.testing.assert_array_equal(back['labels'], [4, 1])


def _write(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_npz_complete_needs_keys_values_and_rows(tmp_path):
    equal = dict(labels=np.array([1, 2, 3]))
    good = _write(tmp_path / 'a.npz', labels=np.array([1, 2, 3]),
                  images=np.ones((3, 2)), extra=np.zeros(1))
    # a superset of the keys is whole
    assert npz_complete(good, ['labels', 'images'], equal, ['images'])
    # the keys exactly (not a strict subset) are whole too
    assert npz_complete(good, ['labels', 'images', 'extra'], equal,
                        ['images'])
    assert not npz_complete(good, ['labels', 'tokens'], equal, ['images'])
    short = _write(tmp_path / 'b.npz', labels=np.array([1, 2, 3]),
                   images=np.ones((2, 2)))
    # right values, too few rows
    assert not npz_complete(short, ['labels'], equal, ['images'])
    other = _write(tmp_path / 'c.npz', labels=np.array([1, 2, 4]),
                   images=np.ones((3, 2)))
    # right rows, other values
    assert not npz_complete(other, ['labels'], equal, ['images'])
    foreign = tmp_path / 'd.npz'
    foreign.write_text('not a zip')
    assert not npz_complete(foreign, ['labels'], equal, ['images'])
    assert not npz_complete(tmp_path / 'none.npz', ['labels'], equal, [])


def test_shard_complete_checks_every_shard_key_and_row(tmp_path):
    labels, seeds = np.array([0, 1, 2]), np.array([7, 8, 9])
    arrays = dict(tokens=np.ones((3, 1, 2, 2), np.int16),
                  images=np.ones((3, 4, 4, 3), np.uint8),
                  labels=labels, seeds=seeds, seconds=np.array([.5, .25]))
    path = write_shard(tmp_path / 's.npz', **arrays)
    assert shard_complete(path, labels, seeds)
    assert not shard_complete(path, labels + 1, seeds)
    assert not shard_complete(path, labels, seeds[::-1])
    for key in ('seconds', 'tokens', 'images'):
        rest = {k: v for k, v in arrays.items() if k != key}
        part = write_shard(tmp_path / f'no_{key}.npz', **rest)
        assert not shard_complete(part, labels, seeds), key
    for key in ('tokens', 'images'):
        cut = dict(arrays, **{key: arrays[key][:2]})
        part = write_shard(tmp_path / f'short_{key}.npz', **cut)
        assert not shard_complete(part, labels, seeds), key


def test_streamed_npz_is_zip64_and_stored(tmp_path):
    big = np.arange(6, dtype=np.int64).reshape(3, 2) * 1000003
    path = write_npz_streamed(tmp_path / 's.npz', [
        ('arr_0', (3, 2), 'int64', [big[:1], big[1:]])])
    with zipfile.ZipFile(path) as archive:
        (member,) = archive.infolist()
        assert member.filename == 'arr_0.npy'
        assert member.compress_type == zipfile.ZIP_STORED
        # written ready for members over 4 GiB (zip64 headers)
        assert member.extract_version >= zipfile.ZIP64_VERSION
    with np.load(path) as data:
        np.testing.assert_array_equal(data['arr_0'], big)
        assert data['arr_0'].dtype == np.int64
    with pytest.raises(ValueError,
                       match=r'^arr_0: 2 rows written, expected 3$'):
        write_npz_streamed(tmp_path / 'bad.npz', [
            ('arr_0', (3, 2), np.int64, [big[:1], big[2:]])])
    with pytest.raises(ValueError,
                       match=r'^arr_0: chunk int32 \(3, 2\) does not fit '
                             r'int64 \(3, 2\)$'):
        write_npz_streamed(tmp_path / 'bad.npz', [
            ('arr_0', (3, 2), np.int64, [big.astype(np.int32)])])
    with pytest.raises(ValueError, match='does not fit'):
        write_npz_streamed(tmp_path / 'bad.npz', [
            ('arr_0', (3, 2), np.int64, [big.reshape(3, 2, 1)])])


def test_streamed_npz_of_non_contiguous_chunks(tmp_path):
    grid = np.arange(24, dtype=np.int32).reshape(4, 6)
    cols = grid[:, ::2]                   # a strided view, [4, 3]
    path = write_npz_streamed(tmp_path / 's.npz', [
        ('a', (4, 3), np.int32, [cols[:3], cols[3:]]),
        ('b', (0,), np.float32, [])])
    with np.load(path) as data:
        np.testing.assert_array_equal(data['a'], cols)
        assert data['b'].shape == (0,)


def test_npz_arrays_reads_the_headers(tmp_path):
    path = _write(tmp_path / 'x.npz', arr_0=np.zeros((5, 2, 3), np.int64),
                  arr_1=np.arange(5, dtype=np.int16))
    assert npz_arrays(str(path)) == {
        'arr_0': ((5, 2, 3), np.dtype(np.int64)),
        'arr_1': ((5,), np.dtype(np.int16))}


def test_npz_arrays_refuses_a_foreign_or_short_file(tmp_path):
    text = tmp_path / 'text.npz'
    text.write_text('not a zip')
    with pytest.raises(InputError,
                       match=rf'^{text} is not a whole \.npz \(truncated or '
                             r'another format\?\): BadZipFile: '):
        npz_arrays(text)
    short = tmp_path / 'short.npz'
    with zipfile.ZipFile(short, 'w') as archive:
        with archive.open('arr_0.npy', 'w') as file:
            np.lib.format.write_array_header_1_0(file, dict(
                descr='<i8', fortran_order=False, shape=(4,)))
            file.write(np.arange(3, dtype=np.int64).tobytes())
    with pytest.raises(InputError, match=r'ValueError: member arr_0\.npy '
                                         r'holds \d+ bytes, its header says'):
        npz_arrays(short)
    future = tmp_path / 'future.npz'
    with zipfile.ZipFile(future, 'w') as archive:
        archive.writestr('arr_0.npy', b'\x93NUMPY\x07\x00' + b' ' * 8)
    with pytest.raises(InputError, match=r'ValueError: member arr_0\.npy '
                                         r'has an unknown \.npy version$'):
        npz_arrays(future)


def test_load_json(tmp_path):
    assert load_json(tmp_path / 'none.json') is None
    (tmp_path / 'a.json').write_text('{"x": [1, 2]}')
    assert load_json(str(tmp_path / 'a.json')) == dict(x=[1, 2])

# --------------------------------------------------------- provenance ----


def test_plain_gives_json_values():
    assert plain((1, 2)) == [1, 2]
    assert plain(dict(a=Path('x/y'), b=(3, (4,)))) == dict(a='x/y',
                                                          b=[3, [4]])
    assert plain(None) is None


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_describe_model_without_a_checkpoint(tmp_path):
    cfg_path = tmp_path / 'm.py'
    cfg_path.write_text('')
    model = dict(type='Net', width=(4, 8), where=Path('a'))
    identity, info = describe_model(Config(dict(model=model, other=1)),
                                    cfg_path, None)
    plain_model = dict(type='Net', width=[4, 8], where='a')
    model_sha = _sha(b'{"type": "Net", "where": "a", "width": [4, 8]}')
    assert identity == dict(checkpoint=None, model_sha256=model_sha)
    assert info == dict(identity, config=str(cfg_path.resolve()),
                        model=plain_model, token_layout=None,
                        tokenizer_checkpoint=None, source_sha256=None)
    # the hash is of the content: key order does not matter
    reordered = dict(where=Path('a'), width=(4, 8), type='Net')
    assert describe_model(Config(dict(model=reordered)), cfg_path,
                          None)[0]['model_sha256'] == model_sha


def test_describe_model_reads_the_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / 'g.pth'
    meta = dict(token_layout=dict(codebook_sizes=[16, 16]),
                tokenizer_checkpoint=dict(path='/t.pth', sha256='ab' * 32),
                source_sha256='cd' * 32, other='not recorded')
    torch.save(dict(meta=meta, state_dict={}), ckpt)
    identity, info = describe_model(Config(dict(model=dict(type='G'))),
                                    'cfg.py', 'g.pth')
    source = dict(path=str(ckpt.resolve()), sha256=_sha(ckpt.read_bytes()))
    assert identity == dict(checkpoint=source,
                            model_sha256=_sha(b'{"type": "G"}'))
    assert info == dict(identity, config=str(tmp_path / 'cfg.py'),
                        model=dict(type='G'),
                        token_layout=meta['token_layout'],
                        tokenizer_checkpoint=meta['tokenizer_checkpoint'],
                        source_sha256='cd' * 32)


LAYOUT = dict(codebook_sizes=[16, 16], sub_tokens=None,
              downsample_factor=None, grids={})


@pytest.fixture
def layouts(monkeypatch):
    """Built layouts: ``layouts['gen']`` and ``layouts['tok']``."""
    built = dict(gen=dict(LAYOUT, grid=[4, 4]), tok=dict(LAYOUT))
    monkeypatch.setattr(provenance, 'generator_layout',
                        lambda model: built[model])
    monkeypatch.setattr(provenance, 'tokenizer_layout',
                        lambda model: built[model])
    return built


def _differ(first, second, what):
    return (rf'^{first} and {second} do not belong together: their token '
            rf'layouts differ \({what}\)$')


def test_check_pairing_of_built_models(layouts):
    check_pairing('gen', 'tok')
    check_pairing('gen', 'tok', dict(generator=None, tokenizer={}))
    layouts['tok']['codebook_sizes'] = [16, 32]
    first, second = 'the generator built from its config', \
        'the tokenizer built from its config'
    with pytest.raises(InputError, match=_differ(
            first, second, rf'codebook_sizes \[16, 16\] in {first}, '
            rf'\[16, 32\] in {second}')):
        check_pairing('gen', 'tok')


def test_check_pairing_compares_each_record_with_its_model(layouts):
    gen = dict(checkpoint=dict(path='/g.pth', sha256='1' * 64),
               config='/g.py', token_layout=dict(LAYOUT, grid=[2, 8]))
    first, second = 'the generator checkpoint /g.pth', \
        'the generator built from /g.py'
    with pytest.raises(InputError, match=_differ(
            first, second, rf'grid \[2, 8\] in {first}, \[4, 4\] in '
                           rf'{second}')):
        check_pairing('gen', 'tok', dict(generator=gen))
    tok = dict(config='/t.py',
               token_layout=dict(LAYOUT, codebook_sizes=[8, 8]))
    first, second = 'the tokenizer built from /t.py', \
        'the tokenizer built from /t.py'
    with pytest.raises(InputError, match=_differ(
            first, second, rf'codebook_sizes \[8, 8\] in {first}, '
                           rf'\[16, 16\] in {second}')):
        check_pairing('gen', 'tok', dict(tokenizer=tok))
    tok = dict(token_layout=dict(LAYOUT, codebook_sizes=[8, 8]))
    first = second = 'the tokenizer built from its config'
    with pytest.raises(InputError, match=_differ(
            first, second, rf'codebook_sizes \[8, 8\] in {first}, '
                           rf'\[16, 16\] in {second}')):
        check_pairing('gen', 'tok', dict(tokenizer=tok))


def test_check_pairing_merges_what_the_records_add(layouts):
    """Sub-token names come only from the records: the generator's record
    and the tokenizer's record are compared on them."""
    gen = dict(checkpoint=dict(path='/g.pth', sha256='1' * 64),
               token_layout=dict(LAYOUT, sub_tokens=['pixel', 'dino']))
    tok = dict(checkpoint=dict(path='/t.pth', sha256='2' * 64),
               token_layout=dict(LAYOUT, sub_tokens=['pixel', 'clip']))
    first, second = 'the generator checkpoint /g.pth', \
        'the tokenizer checkpoint /t.pth'
    with pytest.raises(InputError, match=_differ(
            first, second, rf"sub_tokens \['pixel', 'dino'\] in {first}, "
                           rf"\['pixel', 'clip'\] in {second}")):
        check_pairing('gen', 'tok', dict(generator=gen, tokenizer=tok))
    check_pairing('gen', 'tok', dict(generator=gen, tokenizer=dict(
        tok, token_layout=dict(LAYOUT, sub_tokens=['pixel', 'dino']))))


def test_check_pairing_by_tokenizer_hash(layouts):
    trained = dict(path='/tok_a.pth', sha256='a' * 64)
    gen = dict(checkpoint=dict(path='/g.pth', sha256='1' * 64),
               tokenizer_checkpoint=trained)
    given = dict(path='/tok_b.pth', sha256='b' * 64)
    message = ('the generator checkpoint /g.pth and the tokenizer checkpoint '
               '/tok_b.pth do not belong together: the generator was '
               'trained on codes of the tokenizer checkpoint /tok_a.pth '
               '(sha256 aaaaaaaaaaaaaaaa...), the tokenizer given is '
               '/tok_b.pth (sha256 bbbbbbbbbbbbbbbb...): sample with the '
               'tokenizer whose codes trained the generator')
    with pytest.raises(InputError) as err:
        check_pairing('gen', 'tok', dict(generator=gen,
                                         tokenizer=dict(checkpoint=given)))
    assert str(err.value) == message
    # the same file, or a copy recording it as its source, pairs
    check_pairing('gen', 'tok', dict(generator=gen, tokenizer=dict(
        checkpoint=dict(given, sha256='a' * 64))))
    check_pairing('gen', 'tok', dict(generator=gen, tokenizer=dict(
        checkpoint=given, source_sha256='a' * 64)))
    # what either side does not record is not compared
    check_pairing('gen', 'tok', dict(generator=gen, tokenizer=dict(
        checkpoint=dict(path='/tok_b.pth'))))
    check_pairing('gen', 'tok', dict(generator=dict(
        gen, tokenizer_checkpoint=dict(path='/tok_a.pth')),
        tokenizer=dict(checkpoint=given)))
    check_pairing('gen', 'tok', dict(generator=gen, tokenizer={}))

# ------------------------------------------------------------ sampler ----

SIDE = 4


class FakeGenerator(torch.nn.Module):
    """3 classes, a 2 x 3 grid of 2 sub-tokens; sample ``i``'s tokens are
    ``randint(0, 40000)`` from its own seeded ``torch.Generator``."""
    num_classes = 3
    grid_size = (2, 3)
    codebook_sizes = [40000, 8]       # int32 indices

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.calls = []

    def generate(self, labels, rng=None, **sampling):
        self.calls.append(dict(labels=labels.tolist(), **sampling))
        return torch.stack([torch.randint(0, 40000, (2, 2, 3), generator=g)
                            for g in rng])


class FakeTokenizer(torch.nn.Module):
    """Image of tokens ``t``: every pixel ``(t[0, 0, 0] % 255) / 127.5 - 1``
    (uint8 ``t[0, 0, 0] % 255``)."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def decode(self, tokens):
        value = (tokens[:, 0, 0, 0] % 255).float() / 127.5 - 1
        return value.view(-1, 1, 1, 1).expand(-1, 3, SIDE, SIDE)


def _tokens(seed: int) -> np.ndarray:
    rng = torch.Generator().manual_seed(seed)
    return torch.randint(0, 40000, (2, 2, 3), generator=rng).numpy()


class Clock:
    """``perf_counter``: each batch takes 0.5 s to generate, 0.25 s to
    decode (three calls a batch); ``time``: 1000.0, then 1001.23456."""

    def __init__(self):
        self.ticks, self.walls = 0, 0

    def perf_counter(self):
        batch, phase = divmod(self.ticks, 3)
        self.ticks += 1
        return 10.0 * batch + (0.0, 0.5, 0.75)[phase]

    def time(self):
        self.walls += 1
        return 1000.0 if self.walls == 1 else 1001.23456


@pytest.fixture
def fakes(monkeypatch):
    Bar.made = []
    monkeypatch.setattr(sampler, 'tqdm', Bar)
    clock = Clock()
    monkeypatch.setattr(sampler, 'time', clock)
    pairs = []
    monkeypatch.setattr(sampler, 'check_pairing',
                        lambda *args: pairs.append(args))
    return dict(gen=FakeGenerator(), tok=FakeTokenizer(), pairs=pairs,
                clock=clock)


def test_sample_shards_bar_rate_and_shard_files(fakes, tmp_path):
    gen, tok = fakes['gen'], fakes['tok']
    labels = np.array([2, 0, 1, 2, 0, 1, 2, 0, 1])
    ranges = [(0, 5), (5, 9)]
    sampler.sample_shards(gen, tok, tmp_path, labels, ranges, [0], seed=7,
                          batch_size=2, sampling=dict(top_k=3))
    (bar,) = Bar.made
    assert bar.kwargs == dict(total=5, unit='img', disable=False,
                              dynamic_ncols=True)
    assert bar.updates == [2, 2, 1]
    # 6 positions a sample, 0.5 s of generation a batch
    assert bar.postfix == [dict(tokens_per_s=f'{n * 6 / (0.5 * k):.0f}')
                           for k, n in ((1, 2), (2, 4), (3, 5))]
    assert [c['labels'] for c in gen.calls] == [[2, 0], [1, 2], [0]]
    assert all(c['top_k'] == 3 and len(c) == 2 for c in gen.calls)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['shard_00000.npz']
    shard = shard_io.read_shard(tmp_path / 'shard_00000.npz')
    assert shard['tokens'].dtype == np.int32
    np.testing.assert_array_equal(
        shard['tokens'], np.stack([_tokens(7 + i) for i in range(5)]))
    pixels = np.stack([_tokens(7 + i)[0, 0, 0] % 255 for i in range(5)])
    np.testing.assert_array_equal(
        shard['images'],
        np.broadcast_to(pixels[:, None, None, None], (5, SIDE, SIDE, 3)))
    assert shard['images'].dtype == np.uint8
    np.testing.assert_array_equal(shard['labels'], labels[:5])
    np.testing.assert_array_equal(shard['seeds'], np.arange(7, 12))
    np.testing.assert_allclose(shard['seconds'], [1.5, 0.75])


def test_sample_shards_of_a_later_shard_without_a_bar(fakes, tmp_path):
    gen, tok = fakes['gen'], fakes['tok']
    labels = np.array([2, 0, 1, 2, 0, 1])
    sampler.sample_shards(gen, tok, tmp_path, labels, [(0, 4), (4, 6)],
                          [1], seed=0, batch_size=8, sampling={},
                          progress=False)
    (bar,) = Bar.made
    assert bar.kwargs['total'] == 2 and bar.kwargs['disable'] is True
    shard = shard_io.read_shard(tmp_path / 'shard_00001.npz')
    np.testing.assert_array_equal(shard['seeds'], [4, 5])
    np.testing.assert_array_equal(shard['labels'], [0, 1])
    np.testing.assert_array_equal(shard['tokens'],
                                  np.stack([_tokens(4), _tokens(5)]))
    np.testing.assert_allclose(shard['seconds'], [0.5, 0.25])


def _stamps(folder: Path) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


DEFAULTS = dict(cfg_scale=1.0, temperature=1.0, top_k=0, top_p=1.0,
                cfg_schedule='constant')


def test_run_sampling_defaults_and_record(fakes, tmp_path):
    """Docstring defaults: every class, seed 0, batches of 32, shards of
    1000, rank 0 of 1, a progress bar, KV caches, no cfg_interval and no
    eval_size."""
    gen, tok = fakes['gen'], fakes['tok']
    out = tmp_path / 'run'
    info = dict(generator=dict(config='/g.py'), note='kept')
    identity = dict(generator=dict(path='/g.pth', sha256='1' * 64))
    record = sampler.run_sampling(gen, tok, str(out), num=6, info=info,
                                  identity=identity, eval_command='ev')
    assert fakes['pairs'] == [(gen, tok, info)]
    assert gen.calls == [dict(labels=[0, 1, 2, 0, 1, 2], use_cache=True,
                              **DEFAULTS)]
    assert [b.kwargs for b in Bar.made] == [dict(
        total=6, unit='img', disable=False, dynamic_ncols=True)]
    settings = dict(identity, num=6, classes=[0, 1, 2], seed=0,
                    shard_size=1000, rng_device='cpu', **DEFAULTS)
    assert record['settings'] == settings
    assert json.loads((out / '.settings.json').read_text()) == settings
    assert record['sampling'] == dict(
        DEFAULTS, use_cache=True, seed=0, batch_size=32, shard_size=1000,
        num=6, classes=[0, 1, 2], labels='classes[i % len(classes)]',
        seeds='seed + i')
    assert record['run'] == dict(world_size=1, drawn_shards=1,
                                 wall_seconds=1.235)
    assert record['eval_command'] == 'ev' and record['note'] == 'kept'
    assert record['generator'] == dict(config='/g.py')
    assert json.loads((out / 'sampling.json').read_text()) == record
    with np.load(out / 'samples.npz') as data:
        np.testing.assert_array_equal(data['arr_1'], [0, 1, 2, 0, 1, 2])
        pixels = [_tokens(i)[0, 0, 0] % 255 for i in range(6)]
        np.testing.assert_array_equal(data['arr_0'][:, 0, 0, 0], pixels)
    names = sorted(p.name for p in out.iterdir())
    assert names == ['.settings.json', 'grid.png', 'grid_class_0.png',
                     'grid_class_1.png', 'grid_class_2.png',
                     'samples.npz', 'sampling.json', 'shard_00000.npz']
    assert record['token_shape'] == [2, 2, 3]
    # one batch: 0.5 s generating, 0.25 s decoding; 2 x 3 positions
    timings = record['timings']
    assert (timings['generate_seconds'], timings['decode_seconds']) == \
        (0.5, 0.25)
    assert timings['tokens_per_s'] == 6 * 6 / 0.5
    assert timings['images_per_s'] == 6 / 0.75


def test_run_sampling_arguments_reach_generate_and_the_record(fakes,
                                                               tmp_path):
    gen, tok = fakes['gen'], fakes['tok']
    args = dict(cfg_scale=[2.0, 1.5], temperature=0.9, top_k=[5, 2],
                top_p=0.8, cfg_schedule='linear')
    record = sampler.run_sampling(
        gen, tok, tmp_path, num=4, classes=[2, 1], cfg_interval=0.5,
        eval_size=2, use_cache=False, seed=3, batch_size=3, shard_size=2,
        progress=False, **args)
    assert gen.calls == [
        dict(labels=[2, 1], use_cache=False, cfg_interval=0.5, **args),
        dict(labels=[2, 1], use_cache=False, cfg_interval=0.5, **args)]
    assert [b.kwargs['disable'] for b in Bar.made] == [True]
    sampling = dict(args, cfg_interval=0.5, eval_size=2)
    assert record['settings'] == dict(num=4, classes=[2, 1], seed=3,
                                      shard_size=2, rng_device='cpu',
                                      **sampling)
    assert record['sampling'] == dict(
        sampling, use_cache=False, seed=3, batch_size=3, shard_size=2,
        num=4, classes=[2, 1], labels='classes[i % len(classes)]',
        seeds='seed + i')
    assert record['run']['drawn_shards'] == 2
    for shard, first in ((0, 3), (1, 5)):
        data = shard_io.read_shard(shard_path(tmp_path, shard))
        np.testing.assert_array_equal(data['seeds'], [first, first + 1])
        np.testing.assert_array_equal(
            data['tokens'], np.stack([_tokens(first), _tokens(first + 1)]))
        assert data['images'].shape == (2, 2, 2, 3)      # eval_size
    with np.load(tmp_path / 'samples.npz') as data:
        np.testing.assert_array_equal(data['arr_1'], [2, 1, 2, 1])
        assert data['arr_0'].shape == (4, 2, 2, 3)


def test_run_sampling_resumes_and_redoes_only_what_is_missing(fakes,
                                                              tmp_path):
    gen, tok = fakes['gen'], fakes['tok']
    args = dict(num=6, seed=1, batch_size=2, shard_size=4, progress=False)
    first = sampler.run_sampling(gen, tok, tmp_path, **args)
    calls, stamps = len(gen.calls), _stamps(tmp_path)
    # finished: nothing drawn or written again, the record returned
    assert sampler.run_sampling(gen, tok, tmp_path, **args) == first
    assert sampler.run_sampling(gen, tok, tmp_path, rank=1, world_size=2,
                                **args) is None
    assert len(gen.calls) == calls and _stamps(tmp_path) == stamps
    # one shard lost: only it is drawn again
    shard_path(tmp_path, 1).unlink()
    again = sampler.run_sampling(gen, tok, tmp_path, **args)
    assert [c['labels'] for c in gen.calls[calls:]] == [[1, 2]]
    assert again['run']['drawn_shards'] == 1
    data = shard_io.read_shard(shard_path(tmp_path, 1))
    np.testing.assert_array_equal(data['seeds'], [5, 6])
    assert _stamps(tmp_path)['shard_00000.npz'] == \
        stamps['shard_00000.npz']


def test_run_sampling_on_rank_one_draws_its_share(fakes, tmp_path):
    gen, tok = fakes['gen'], fakes['tok']
    assert sampler.run_sampling(gen, tok, tmp_path, num=6, shard_size=2,
                                rank=1, world_size=2) is None
    # rank 1 of 2 draws shard 1 only, without a bar, and writes no outputs
    assert [c['labels'] for c in gen.calls] == [[2, 0]]
    assert [b.kwargs['disable'] for b in Bar.made] == [True]
    assert sorted(p.name for p in tmp_path.glob('shard_*')) == \
        ['shard_00001.npz']
    assert not (tmp_path / 'samples.npz').exists()


def test_run_sampling_new_checkpoint_content_clears_the_folder(fakes,
                                                               tmp_path):
    gen, tok = fakes['gen'], fakes['tok']
    args = dict(num=3, progress=False)
    sampler.run_sampling(gen, tok, tmp_path, identity=dict(
        generator=dict(path='/g.pth', sha256='1' * 64)), **args)
    (tmp_path / 'grid_class_9.png').write_bytes(b'old')
    (tmp_path / 'shard_00007.npz').write_bytes(b'old')
    calls = len(gen.calls)
    record = sampler.run_sampling(gen, tok, tmp_path, identity=dict(
        generator=dict(path='/g.pth', sha256='2' * 64)), **args)
    assert len(gen.calls) == calls + 1
    assert record['settings']['generator']['sha256'] == '2' * 64
    assert not (tmp_path / 'grid_class_9.png').exists()
    assert not (tmp_path / 'shard_00007.npz').exists()
    with pytest.raises(InputError, match=rf'^{tmp_path} holds samples made '
                                         r'with other settings \(seed'):
        sampler.run_sampling(gen, tok, tmp_path, seed=5, identity=dict(
            generator=dict(path='/g.pth', sha256='2' * 64)), **args)


def test_device_and_sync(monkeypatch):
    module = torch.nn.Linear(2, 2)
    assert sampler._device(module) == torch.device('cpu')
    waited = []
    monkeypatch.setattr(torch.cuda, 'synchronize', waited.append)
    sampler._sync(torch.device('cpu'))         # nothing to wait for on CPU
    assert waited == []
    # timings on a GPU wait for its queued work (no GPU needed to see it)
    sampler._sync(torch.device('cuda', 1))
    assert waited == [torch.device('cuda', 1)]


def test_run_sampling_waits_at_the_barrier_before_assembling(fakes,
                                                             tmp_path):
    """Rank 0 assembles the outputs after a barrier, once every process
    has written its shards."""
    seen = []

    def barrier():
        seen.append(sorted(p.name for p in tmp_path.glob('*.npz')))

    sampler.run_sampling(fakes['gen'], fakes['tok'], tmp_path, num=3,
                         shard_size=2, progress=False, barrier=barrier)
    assert seen and seen[0] == []
    assert seen[-1] == ['shard_00000.npz', 'shard_00001.npz']
    assert (tmp_path / 'samples.npz').is_file()
