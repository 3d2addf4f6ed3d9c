"""fqzoo.generation.plan: classes, seeds and shards of each sample."""
import numpy as np
import pytest

from fqzoo.generation.plan import (
    balanced_labels,
    check_classes,
    per_class_counts,
    sample_seeds,
    shard_ranges,
    shards_for_rank,
)


def test_balanced_labels_cycle_through_the_classes():
    labels = balanced_labels(12, [4, 1, 7])
    assert labels.tolist() == [4, 1, 7] * 4
    assert per_class_counts(labels, [4, 1, 7]) == [(4, 4), (1, 4), (7, 4)]
    # any prefix (any shard) is balanced up to one sample per class
    for stop in range(1, 13):
        counts = [n for _, n in per_class_counts(labels[:stop], [4, 1, 7])]
        assert max(counts) - min(counts) <= 1
    with pytest.raises(ValueError, match='multiple of the 3 classes'):
        balanced_labels(10, [4, 1, 7])
    with pytest.raises(ValueError, match='multiple'):
        balanced_labels(0, [4])


def test_seeds_depend_on_the_index_only():
    assert sample_seeds(3, 6, 100).tolist() == [103, 104, 105]
    whole = sample_seeds(0, 10, 7)
    parts = np.concatenate([sample_seeds(a, b, 7)
                            for a, b in shard_ranges(10, 4)])
    np.testing.assert_array_equal(whole, parts)


def test_check_classes():
    assert check_classes(range(3), 3) == [0, 1, 2]
    with pytest.raises(ValueError, match=r'\[3\] are not in \[0, 3\)'):
        check_classes([0, 3], 3)
    with pytest.raises(ValueError, match='repeat'):
        check_classes([1, 1], 3)
    with pytest.raises(ValueError, match='no classes'):
        check_classes([], 3)


def test_shards_for_rank():
    shards = list(range(7))
    # a fresh run: rank r draws the shards with shard_id % world_size == r
    for world in (1, 2, 3):
        for rank in range(world):
            assert shards_for_rank(shards, rank, world) == \
                [s for s in shards if s % world == rank]
    # resumed: the remaining shards are spread evenly, disjoint, complete
    todo = [1, 3, 5, 6]
    split = [shards_for_rank(todo, rank, 2) for rank in range(2)]
    assert split == [[1, 5], [3, 6]]
    assert sorted(split[0] + split[1]) == todo
    with pytest.raises(ValueError, match='rank 2'):
        shards_for_rank(todo, 2, 2)
