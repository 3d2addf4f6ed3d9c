"""Which sample is which: class, seed and shard of sample ``i``.

A sampling run of ``N`` samples over the classes ``c_0 ... c_{C-1}`` gives
sample ``i`` the class ``c_{i mod C}`` and the seed ``base_seed + i``; both
depend on ``i`` alone, so any shard (any batch) can be drawn on its own, in
any process, and gives the same samples. Cycling through the classes keeps
every shard, and every prefix of the run, class-balanced.
"""
from typing import List, Sequence, Tuple

import numpy as np

from fqzoo.apis.codes import shard_ranges

__all__ = ['balanced_labels', 'check_classes', 'per_class_counts',
           'sample_seeds', 'shard_ranges', 'shards_for_rank']


def check_classes(classes: Sequence[int], num_classes: int) -> List[int]:
    """``classes`` as ints, checked: each in ``[0, num_classes)``, no
    repeats, at least one."""
    classes = [int(c) for c in classes]
    if not classes:
        raise ValueError('no classes to sample')
    if len(set(classes)) != len(classes):
        raise ValueError(f'classes repeat: {classes}')
    bad = [c for c in classes if not 0 <= c < num_classes]
    if bad:
        raise ValueError(f'classes {bad} are not in [0, {num_classes}) '
                         '(the generator\'s classes)')
    return classes


def balanced_labels(num: int, classes: Sequence[int]) -> np.ndarray:
    """The class of each of ``num`` samples: ``classes[i % len(classes)]``.

    Raises:
        ValueError: ``num`` is not a multiple of the number of classes (the
            classes would not be exactly balanced).

    Example:
        >>> balanced_labels(6, [3, 7]).tolist()
        [3, 7, 3, 7, 3, 7]
    """
    if num < 1 or num % len(classes):
        raise ValueError(f'--num {num} is not a positive multiple of the '
                         f'{len(classes)} classes asked for: every class '
                         'gets num / classes samples')
    return np.resize(np.asarray(classes, dtype=np.int64), num)


def sample_seeds(start: int, stop: int, base_seed: int) -> np.ndarray:
    """Seeds of samples ``start ... stop - 1``: ``base_seed + i``."""
    return np.arange(start, stop, dtype=np.int64) + int(base_seed)


def shards_for_rank(todo: Sequence[int], rank: int,
                    world_size: int) -> List[int]:
    """The shards one process draws: every ``world_size``-th of the
    incomplete shards ``todo``, from position ``rank``.

    On a fresh run ``todo`` is every shard, so rank ``r`` draws the shards
    with ``shard_id % world_size == r``; on a resumed run the remaining
    shards are spread evenly again, so no rank waits at the final barrier
    for another's backlog.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f'rank {rank} is not in [0, {world_size})')
    return list(todo)[rank::world_size]


def per_class_counts(labels: np.ndarray,
                     classes: Sequence[int]) -> List[Tuple[int, int]]:
    """``[(class, count), ...]`` in the order of ``classes``."""
    return [(int(c), int((labels == c).sum())) for c in classes]
