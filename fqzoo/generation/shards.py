"""The files of a sampling run: shards and the ``.npz``.

Every shard is one ``shard_{i:05d}.npz`` (``tokens [n, G, h, w]``,
``images [n, H, W, 3]`` uint8, ``labels [n]``, ``seeds [n]``, ``seconds``:
generation and decoding time), written under a temporary name and renamed
(the shard engine, :mod:`fqzoo.utils.shards`, which also guards the
folder's settings and splits the shards over processes), so a shard file
that reads back whole is complete. The final
``samples.npz`` is written in the layout of the ADM evaluator
(guided-diffusion's ``evaluations/evaluator.py`` reads ``arr_0``, uint8
``[N, H, W, 3]``; ``arr_1`` holds the labels), streamed shard by shard so
50k ImageNet-size samples never sit in memory at once.
"""
import json
import zipfile
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.lib import format as npy_format

from fqzoo.errors import InputError
from fqzoo.utils.shards import save_atomic, save_npz

SHARD_KEYS = ('tokens', 'images', 'labels', 'seeds', 'seconds')
HEADER_READERS = {(1, 0): npy_format.read_array_header_1_0,
                  (2, 0): npy_format.read_array_header_2_0}


def shard_path(out_dir: Union[str, Path], shard: int) -> Path:
    """``out_dir/shard_{shard:05d}.npz``."""
    return Path(out_dir) / f'shard_{shard:05d}.npz'


def write_shard(path: Path, **arrays: np.ndarray) -> Path:
    """``np.savez`` to a temporary name in the same folder, then renamed."""
    return save_npz(path, **arrays)


def read_shard(path: Path) -> Dict[str, np.ndarray]:
    """Every array of a shard file, loaded."""
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def npz_complete(path: Path, keys: Sequence[str],
                 equal: Dict[str, np.ndarray], rows: Sequence[str]) -> bool:
    """Whether the ``.npz`` at ``path`` reads back whole: it has ``keys``,
    the arrays of ``equal`` as given, and as many rows in each array of
    ``rows`` as in those (a missing, truncated or foreign file is not
    complete)."""
    if not path.is_file():
        return False
    count = len(next(iter(equal.values())))
    try:
        with np.load(path) as data:
            if not set(keys) <= set(data.files):
                return False
            return (all(np.array_equal(data[k], v) for k, v in equal.items())
                    and all(len(data[k]) == count for k in rows))
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return False


def shard_complete(path: Path, labels: np.ndarray, seeds: np.ndarray) -> bool:
    """Whether ``path`` reads back whole with these labels and seeds (a
    missing, truncated or foreign file is not complete)."""
    return npz_complete(path, SHARD_KEYS, dict(labels=labels, seeds=seeds),
                        ('tokens', 'images'))


def write_npz_streamed(path: Union[str, Path],
                       arrays: Sequence[Tuple[str, Tuple[int, ...], np.dtype,
                                              Iterable[np.ndarray]]]
                       ) -> Path:
    """An uncompressed ``.npz`` whose arrays are written chunk by chunk.

    Args:
        path (str | Path): the file; written to a temporary name and
            renamed.
        arrays (Sequence[tuple]): ``(name, shape, dtype, chunks)`` per
            array; the chunks are C-ordered pieces along the first axis
            whose rows add up to ``shape[0]``.

    Returns:
        Path: ``path``, which ``np.load`` reads as usual.

    Raises:
        ValueError: chunks of the wrong dtype, row shape or total length.
    """
    def write(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, 'w', compression=zipfile.ZIP_STORED,
                             allowZip64=True) as archive:
            for name, shape, dtype, chunks in arrays:
                _write_npy_member(archive, name, tuple(shape),
                                  np.dtype(dtype), chunks)

    return save_atomic(path, write)


def _write_npy_member(archive: zipfile.ZipFile, name: str,
                      shape: Tuple[int, ...], dtype: np.dtype,
                      chunks: Iterable[np.ndarray]) -> None:
    header = dict(descr=npy_format.dtype_to_descr(dtype),
                  fortran_order=False, shape=shape)
    rows = 0
    with archive.open(f'{name}.npy', 'w', force_zip64=True) as file:
        npy_format.write_array_header_1_0(file, header)
        for chunk in chunks:
            chunk = np.ascontiguousarray(chunk)
            if chunk.dtype != dtype or chunk.shape[1:] != shape[1:]:
                raise ValueError(f'{name}: chunk {chunk.dtype} '
                                 f'{chunk.shape} does not fit {dtype} '
                                 f'{shape}')
            file.write(chunk.tobytes())
            rows += len(chunk)
    if rows != shape[0]:
        raise ValueError(f'{name}: {rows} rows written, expected '
                         f'{shape[0]}')


def npz_arrays(path: Union[str, Path]) -> Dict[str, Tuple[Tuple[int, ...],
                                                         np.dtype]]:
    """``{name: (shape, dtype)}`` of the arrays of an ``.npz``, read from
    the headers only (50k ImageNet samples are never loaded), each member
    checked to hold all its bytes.

    Raises:
        InputError: the file is not a whole ``.npz`` (truncated: no zip
            directory, or a member shorter than its header says), naming
            the file.
    """
    path = Path(path)
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                with archive.open(member) as file:
                    read_header = HEADER_READERS.get(
                        npy_format.read_magic(file))
                    if read_header is None:
                        raise ValueError(f'member {member.filename} has an '
                                         'unknown .npy version')
                    shape, _, dtype = read_header(file)
                    expected = file.tell() + int(np.prod(shape)) * \
                        dtype.itemsize
                if member.file_size != expected:
                    raise ValueError(f'member {member.filename} holds '
                                     f'{member.file_size} bytes, its '
                                     f'header says {expected}')
                arrays[member.filename[:-len('.npy')]] = (tuple(shape),
                                                         dtype)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise InputError(f'{path} is not a whole .npz (truncated or another '
                         f'format?): {type(err).__name__}: {err}') from None
    return arrays


def load_json(path: Union[str, Path]) -> Optional[dict]:
    """The JSON at ``path``, or None when it does not exist."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None
