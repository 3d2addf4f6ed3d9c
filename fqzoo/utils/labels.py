"""Class labels checked, never cut: ``0.5`` is refused, not class 0."""
from typing import Sequence, Union

import numpy as np
import torch

from fqzoo.errors import InputError

LabelsLike = Union[np.ndarray, torch.Tensor, Sequence, int, float]


def class_labels(values: LabelsLike, what: str = 'labels') -> np.ndarray:
    """``values`` as int64 class labels, refusing any that is not a whole
    number.

    Args:
        values: labels (an array, a tensor, a list or one number); floats
            are accepted when they are whole (``3.0``).
        what (str): what they are, named in the message. Defaults to
            'labels'.

    Returns:
        np.ndarray: int64, the shape of ``values``.

    Raises:
        InputError: a label that is not a whole number (or not a number),
            naming its position and value.

    Example:
        >>> class_labels([1, 2.0]).tolist()
        [1, 2]
    """
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.dtype == np.bool_ or not (
            np.issubdtype(array.dtype, np.integer)
            or np.issubdtype(array.dtype, np.floating)):
        raise InputError(f'{what} must be whole numbers, got {array.dtype} '
                         f'values {array.reshape(-1)[:8].tolist()}')
    if np.issubdtype(array.dtype, np.floating):
        flat = array.reshape(-1)
        bad = np.flatnonzero(~np.isfinite(flat) | (flat != np.round(flat)))
        if len(bad):
            shown = ', '.join(f'{str(flat[i])} (item {i})'
                              for i in bad[:8])
            raise InputError(f'{what} must be whole numbers (class indices), '
                             f'got {shown}: refusing to cut them to '
                             'integers')
    return array.astype(np.int64)
