"""Which sample is which: class and seed of sample ``i`` (its shard:
:func:`fqzoo.utils.shards.shard_ranges`).

A sampling run of ``N`` samples over the classes ``c_0 ... c_{C-1}`` gives
sample ``i`` the class ``c_{i mod C}`` and the seed ``base_seed + i``; both
depend on ``i`` alone, so any shard (any batch) can be drawn on its own, in
any process, and gives the same samples. Cycling through the classes keeps
every shard, and every prefix of the run, class-balanced.
"""
from typing import List, Sequence, Tuple

import numpy as np

from fqzoo.errors import InputError
from fqzoo.utils.labels import class_labels

__all__ = ['balanced_labels', 'check_classes', 'per_class_counts',
           'sample_seeds']


def check_classes(classes: Sequence[int], num_classes: int) -> List[int]:
    """``classes`` as ints, checked: whole numbers (``0.5`` is refused, not
    cut to 0), each in ``[0, num_classes)``, no repeats, at least one."""
    classes = class_labels(list(classes), 'classes').tolist()
    if not classes:
        raise InputError('no classes to sample')
    if len(set(classes)) != len(classes):
        raise InputError(f'classes repeat: {classes}')
    bad = [c for c in classes if not 0 <= c < num_classes]
    if bad:
        raise InputError(f'classes {bad} are not in [0, {num_classes}) '
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
        raise InputError(f'--num {num} is not a positive multiple of the '
                         f'{len(classes)} classes asked for: every class '
                         'gets num / classes samples')
    return np.resize(np.asarray(classes, dtype=np.int64), num)


def sample_seeds(start: int, stop: int, base_seed: int) -> np.ndarray:
    """Seeds of samples ``start ... stop - 1``: ``base_seed + i``."""
    return np.arange(start, stop, dtype=np.int64) + int(base_seed)


def per_class_counts(labels: np.ndarray,
                     classes: Sequence[int]) -> List[Tuple[int, int]]:
    """``[(class, count), ...]`` in the order of ``classes``."""
    return [(int(c), int((labels == c).sum())) for c in classes]
