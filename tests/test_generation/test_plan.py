"""fqzoo.generation.plan: classes and seeds of each sample."""
import numpy as np
import pytest

from fqzoo.generation.plan import (
    balanced_labels,
    check_classes,
    per_class_counts,
    sample_seeds,
)
from fqzoo.utils.shards import shard_ranges


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
    # whole floats are classes; 0.5 and 2.7 are refused, not cut to 0 and 2
    assert check_classes([2.0, 0], 3) == [2, 0]
    with pytest.raises(ValueError) as err:
        check_classes([0.5, 1, 2.7], 3)
    assert '0.5 (item 0), 2.7 (item 2)' in str(err.value)
