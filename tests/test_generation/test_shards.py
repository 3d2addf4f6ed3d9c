"""fqzoo.generation.shards: sampling shard files and the streamed .npz (the
settings guard: tests/test_utils/test_shard_engine.py)."""
import numpy as np
import pytest

from fqzoo.generation.shards import (
    shard_complete,
    write_npz_streamed,
    write_shard,
)


def test_streamed_npz_reads_back_with_np_load(tmp_path):
    images = np.arange(5 * 4 * 4 * 3, dtype=np.uint8).reshape(5, 4, 4, 3)
    labels = np.array([3, 1, 4, 1, 5])
    path = write_npz_streamed(tmp_path / 'samples.npz', [
        ('arr_0', images.shape, np.uint8, [images[:2], images[2:]]),
        ('arr_1', labels.shape, np.int64, [labels])])
    with np.load(path) as data:
        assert data.files == ['arr_0', 'arr_1']
        np.testing.assert_array_equal(data['arr_0'], images)
        np.testing.assert_array_equal(data['arr_1'], labels)
    with pytest.raises(ValueError, match='4 rows written, expected 5'):
        write_npz_streamed(tmp_path / 'bad.npz',
                           [('arr_0', images.shape, np.uint8, [images[:4]])])
    with pytest.raises(ValueError, match='does not fit'):
        write_npz_streamed(tmp_path / 'bad.npz', [
            ('arr_0', images.shape, np.uint8, [images.astype(np.int16)])])
    assert sorted(p.name for p in tmp_path.iterdir()) == ['samples.npz']


def test_shard_complete(tmp_path):
    labels, seeds = np.array([0, 1]), np.array([7, 8])
    path = write_shard(tmp_path / 'shard_00000.npz',
                       tokens=np.zeros((2, 1, 2, 2)),
                       images=np.zeros((2, 4, 4, 3), np.uint8),
                       labels=labels, seeds=seeds, seconds=np.zeros(2))
    assert shard_complete(path, labels, seeds)
    assert not shard_complete(path, labels, seeds + 1)
    assert not shard_complete(tmp_path / 'missing.npz', labels, seeds)
    path.write_bytes(path.read_bytes()[:-50])
    assert not shard_complete(path, labels, seeds)
