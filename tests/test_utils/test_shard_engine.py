"""fqzoo.utils.shards: the one shard engine of code extraction and
sampling (ranges, the torchrun split, atomic files, the settings guard,
stale shards, resume)."""
import json
import threading

import numpy as np
import pytest

from fqzoo.utils.shards import (
    SETTINGS,
    ShardRun,
    save_atomic,
    save_npy,
    save_npz,
    settings_differences,
    shard_ranges,
    shards_for_rank,
    source_file,
)


def test_shard_ranges_cover_the_items_once():
    assert shard_ranges(7, 3) == [(0, 3), (3, 6), (6, 7)]
    assert shard_ranges(6, 3) == [(0, 3), (3, 6)]
    assert shard_ranges(0, 3) == []
    with pytest.raises(ValueError, match='shard_size must be >= 1'):
        shard_ranges(5, 0)


def test_shards_for_rank():
    shards = list(range(7))
    # a fresh run: rank r makes the shards with shard_id % world_size == r
    for world in (1, 2, 3):
        for rank in range(world):
            assert shards_for_rank(shards, rank, world) == \
                [s for s in shards if s % world == rank]
    # resumed: the remaining shards are spread evenly, disjoint, complete
    todo = [1, 3, 5, 6]
    split = [shards_for_rank(todo, rank, 2) for rank in range(2)]
    assert split == [[1, 5], [3, 6]]
    with pytest.raises(ValueError, match='rank 2'):
        shards_for_rank(todo, 2, 2)


def test_atomic_writes_leave_no_partial_file(tmp_path):
    array = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(
        np.load(save_npy(tmp_path / 'a.npy', array)), array)
    with np.load(save_npz(tmp_path / 'b.npz', x=array, y=array[0])) as data:
        assert data.files == ['x', 'y']
        np.testing.assert_array_equal(data['y'], [0, 1, 2])

    def fails(tmp):
        tmp.write_bytes(b'half a shard')
        raise RuntimeError('killed')

    with pytest.raises(RuntimeError, match='killed'):
        save_atomic(tmp_path / 'c.npy', fails)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.npy', 'b.npz']


def test_settings_differences_by_value_and_source_content(tmp_path):
    ckpt = tmp_path / 'model.pth'
    ckpt.write_bytes(b'weights one')
    old = dict(num=10, top_k=[0, 8], tok=dict(checkpoint=source_file(ckpt)))
    assert settings_differences(old, dict(old, top_k=(0, 8))) == ([], [])
    # a renamed copy with the same content is the same source
    copy = tmp_path / 'copy.pth'
    copy.write_bytes(b'weights one')
    assert settings_differences(
        old, dict(old, tok=dict(checkpoint=source_file(copy)))) == ([], [])
    # new content at the same path: stale, named with both hashes
    ckpt.write_bytes(b'weights two')
    refused, stale = settings_differences(
        old, dict(old, tok=dict(checkpoint=source_file(ckpt))))
    assert refused == [] and len(stale) == 1
    assert stale[0].startswith(f'tok.checkpoint: {ckpt.resolve()} has '
                               'changed')
    assert old['tok']['checkpoint']['sha256'][:16] in stale[0]
    assert source_file(ckpt)['sha256'][:16] in stale[0]
    # another file with other content: refused, both files named
    other = tmp_path / 'other.pth'
    other.write_bytes(b'weights three')
    refused, stale = settings_differences(
        old, dict(old, num=20, tok=dict(checkpoint=source_file(other))))
    assert stale == []
    assert refused[0] == 'num: 10 in the folder, now 20'
    assert str(ckpt.resolve()) in refused[1]
    assert str(other.resolve()) in refused[1]


def _run(out, settings, **kwargs) -> ShardRun:
    return ShardRun(out, settings, total=5, shard_size=2, what='codes',
                    shard_patterns=['part_*.npy'], outputs=['manifest.json'],
                    **kwargs)


def _make(run, out) -> list:
    """Make every incomplete shard; return those made."""
    todo = run.todo(lambda i: (out / f'part_{i}.npy').is_file())
    for shard in run.mine(todo):
        start, stop = run.ranges[shard]
        save_npy(out / f'part_{shard}.npy', np.arange(start, stop))
    if run.finish():
        (out / 'manifest.json').write_text('{}')
    return todo


def test_resume_refuse_and_redo(tmp_path, caplog):
    out = tmp_path / 'run'
    ckpt = tmp_path / 'tok.pth'
    ckpt.write_bytes(b'v1')
    settings = dict(split='val', tokenizer=source_file(ckpt))
    run = _run(out, settings)
    run.open()
    assert json.loads((out / SETTINGS).read_text()) == settings
    assert _make(run, out) == [0, 1, 2]
    # resume: only the missing shard is made again
    (out / 'part_1.npy').unlink()
    again = _run(out, settings)
    again.open()
    assert _make(again, out) == [1]

    # other settings: refused before anything is touched
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with pytest.raises(ValueError) as err:
        _run(out, dict(settings, split='train')).open()
    assert "split: 'val' in the folder, now 'train'" in str(err.value)
    assert str(out) in str(err.value)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before

    # new weights at the same path: every shard and the manifest are redone
    ckpt.write_bytes(b'v2')
    redo = _run(out, dict(settings, tokenizer=source_file(ckpt)))
    with caplog.at_level('WARNING'):
        redo.open()
    assert 'Redoing the codes' in caplog.text and 'has changed' in caplog.text
    assert sorted(p.name for p in out.iterdir()) == [SETTINGS]
    assert json.loads((out / SETTINGS).read_text())['tokenizer'] == \
        source_file(ckpt)
    assert _make(redo, out) == [0, 1, 2]


def test_ranks_split_the_shards_and_rank_zero_guards(tmp_path):
    out = tmp_path / 'run'
    barrier = threading.Barrier(2)
    made = {}

    def worker(rank):
        run = _run(out, dict(split='val'), rank=rank, world_size=2,
                   barrier=barrier.wait)
        run.open()
        todo = run.todo(lambda i: (out / f'part_{i}.npy').is_file())
        made[rank] = run.mine(todo)
        for shard in made[rank]:
            save_npy(out / f'part_{shard}.npy', np.arange(*run.ranges[shard]))
        made[f'finish{rank}'] = run.finish()

    threads = [threading.Thread(target=worker, args=(r,)) for r in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert made[0] == [0, 2] and made[1] == [1]
    assert made['finish0'] is True and made['finish1'] is False
    parts = [np.load(out / f'part_{i}.npy') for i in range(3)]
    np.testing.assert_array_equal(np.concatenate(parts), np.arange(5))
