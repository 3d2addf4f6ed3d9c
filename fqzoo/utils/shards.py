"""Resumable output folders written in shards: the one engine behind code
extraction (:mod:`fqzoo.apis.codes`) and sampling at scale
(:mod:`fqzoo.generation.sampler`).

A run of ``N`` items is cut into shards of ``shard_size`` items
(:func:`shard_ranges`); each shard is a few files that depend on the shard
alone, so any shard can be made on its own, in any process.

- **Atomic files**: :func:`save_atomic` (and :func:`save_npy`,
  :func:`save_npz`) write to a hidden temporary name in the same folder and
  rename, so a shard file that exists under its name is complete.
- **Settings guard**: :class:`ShardRun` records what the outputs depend on
  in ``.settings.json`` and compares every later run with it
  (:func:`settings_differences`). A folder made with other settings is
  refused, naming each difference with both values; it is never mixed.
- **Sources by content**: the files the outputs are made from (checkpoints)
  are recorded by :func:`source_file` as ``dict(path=..., sha256=...)``: a
  renamed copy is the same source; another file is refused; the same path
  with other content (new weights saved over a checkpoint) makes the
  folder's shards stale, and they are deleted and made again, never kept.
- **Resume**: :meth:`ShardRun.todo` lists the shards that are not complete
  (by a test each user gives: files present, lengths, labels).
- **torchrun split**: :func:`shards_for_rank` spreads the incomplete shards
  over the processes; rank 0 guards the folder, the others wait at a
  barrier and then check it read-only.

Example:
    >>> run = ShardRun(out, dict(split='val'), total=10, shard_size=4,
    ...                what='codes', shard_patterns=['codes_*.npy'])
    >>> run.open()
    >>> for shard in run.mine(run.todo(lambda i: shard_done(i))):
    ...     save_npy(out / f'codes_{shard:05d}.npy', make(shard))
"""
import json
import logging
import os
from pathlib import Path
from typing import (
    Callable,
    Dict,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import numpy as np

from fqzoo.errors import InputError, InputFileNotFoundError
from fqzoo.utils.files import file_sha256, write_json_atomic

SETTINGS = '.settings.json'
PathLike = Union[str, Path]

logger = logging.getLogger(__name__)


def no_barrier() -> None:
    """One process: nothing to wait for."""


def shard_ranges(total: int, shard_size: int) -> List[Tuple[int, int]]:
    """``[start, stop)`` of each shard of ``total`` items.

    Example:
        >>> shard_ranges(7, 3)
        [(0, 3), (3, 6), (6, 7)]
    """
    if shard_size < 1:
        raise InputError(f'shard_size must be >= 1, got {shard_size}')
    return [(start, min(start + shard_size, total))
            for start in range(0, total, shard_size)]


def shards_for_rank(todo: Sequence[int], rank: int,
                    world_size: int) -> List[int]:
    """The shards one process makes: every ``world_size``-th of the
    incomplete shards ``todo``, from position ``rank``.

    On a fresh run ``todo`` is every shard, so rank ``r`` makes the shards
    with ``shard_id % world_size == r``; on a resumed run the remaining
    shards are spread evenly again, so no rank waits at the final barrier
    for another's backlog.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f'rank {rank} is not in [0, {world_size})')
    return list(todo)[rank::world_size]


def save_atomic(path: PathLike, write: Callable[[Path], None]) -> Path:
    """``write(tmp)`` to a hidden temporary name beside ``path`` (same
    suffix), then rename it to ``path``; the temporary file is removed if
    ``write`` fails."""
    path = Path(path)
    tmp = path.with_name(f'.{path.stem}.tmp{path.suffix}')
    try:
        write(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return path


def save_npy(path: PathLike, array: np.ndarray) -> Path:
    """``np.save`` atomically (:func:`save_atomic`)."""
    return save_atomic(path, lambda tmp: np.save(tmp, array))


def save_npz(path: PathLike, **arrays: np.ndarray) -> Path:
    """``np.savez`` atomically (:func:`save_atomic`)."""
    return save_atomic(path, lambda tmp: np.savez(tmp, **arrays))


def source_file(path: PathLike) -> Dict[str, str]:
    """A file the outputs are made from, for the settings:
    ``dict(path=<resolved path>, sha256=<hex digest>)``.

    Raises:
        InputFileNotFoundError: no such file.
    """
    if not Path(path).is_file():
        raise InputFileNotFoundError(f'{path} not found (no such file)')
    return dict(path=str(Path(path).resolve()), sha256=file_sha256(path))


def _is_source(value) -> bool:
    return isinstance(value, dict) and set(value) == {'path', 'sha256'}


def _short(sha: Optional[str]) -> str:
    return 'none' if sha is None else sha[:16]


def settings_differences(old: dict, new: dict, prefix: str = ''
                         ) -> Tuple[List[str], List[str]]:
    """How ``new`` settings differ from the ``old`` ones of a folder.

    Both are compared as JSON values (tuples equal lists). Source files
    (``dict(path=..., sha256=...)``, see :func:`source_file`) are the same
    when their ``sha256`` are (a moved or renamed copy is the same source).

    Returns:
        tuple: ``(refused, stale)``, messages naming the setting and both
        values. ``stale``: a source whose path is the same but whose
        content (sha256) is not: the folder's shards were made from the
        file's former content. ``refused``: every other difference.
    """
    old, new = json.loads(json.dumps(old)), json.loads(json.dumps(new))
    refused, stale = [], []
    for key in sorted(set(old) | set(new), key=str):
        name = f'{prefix}{key}'
        was, now = old.get(key), new.get(key)
        if _is_source(was) and _is_source(now):
            if was['sha256'] == now['sha256']:
                continue
            if was['path'] == now['path']:
                stale.append(f'{name}: {now["path"]} has changed (sha256 '
                             f'{_short(was["sha256"])}... in the folder, '
                             f'now {_short(now["sha256"])}...)')
            else:
                refused.append(f'{name}: {was["path"]} (sha256 '
                               f'{_short(was["sha256"])}...) in the folder, '
                               f'now {now["path"]} (sha256 '
                               f'{_short(now["sha256"])}...)')
        elif isinstance(was, dict) and isinstance(now, dict):
            more = settings_differences(was, now, f'{name}.')
            refused += more[0]
            stale += more[1]
        elif was != now:
            refused.append(f'{name}: {was!r} in the folder, now {now!r}')
    return refused, stale


class ShardRun:
    """One resumable run writing shards into ``out_dir``.

    Args:
        out_dir (str | Path): the run folder (created by :meth:`open`).
        settings (dict): what the outputs depend on, as JSON values; source
            files as :func:`source_file` gives them.
        total (int): items in the run.
        shard_size (int): items per shard.
        what (str): what the shards hold, for messages ('codes', 'samples').
        shard_patterns (Sequence[str]): glob patterns of the shard files
            (deleted when stale).
        outputs (Sequence[str]): glob patterns of the files made from the
            shards (manifest, assembled outputs), deleted first when the
            shards are stale.
        rank (int): this process. Defaults to 0.
        world_size (int): processes making the shards together.
            Defaults to 1.
        barrier (Callable[[], None]): waits for every process (e.g.
            ``torch.distributed.barrier``). Defaults to a no-op.
    """

    def __init__(self, out_dir: PathLike, settings: dict, *, total: int,
                 shard_size: int, what: str,
                 shard_patterns: Sequence[str], outputs: Sequence[str] = (),
                 rank: int = 0, world_size: int = 1,
                 barrier: Callable[[], None] = no_barrier) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f'rank {rank} is not in [0, {world_size})')
        self.out = Path(out_dir)
        self.settings = json.loads(json.dumps(settings))
        self.ranges = shard_ranges(total, shard_size)
        self.what = what
        self.shard_patterns = tuple(shard_patterns)
        self.outputs = tuple(outputs)
        self.rank, self.world_size, self.barrier = rank, world_size, barrier

    @property
    def settings_path(self) -> Path:
        """``out_dir/.settings.json``."""
        return self.out / SETTINGS

    def recorded_settings(self) -> Optional[dict]:
        """The settings the folder's shards were made with (None: none
        yet)."""
        path = self.settings_path
        return json.loads(path.read_text()) if path.is_file() else None

    def check(self) -> List[str]:
        """Compare the folder's settings with this run's.

        Returns:
            list[str]: why its shards are stale (empty: none, or no
            settings recorded yet).

        Raises:
            InputError: the folder was made with other settings, naming
                each difference with both values.
        """
        old = self.recorded_settings()
        if old is None:
            return []
        refused, stale = settings_differences(old, self.settings)
        if refused:
            raise InputError(
                f'{self.out} holds {self.what} made with other settings ('
                + '; '.join(refused + stale) + '): use another output '
                'folder or delete it')
        return stale

    def open(self) -> None:
        """Guard the folder, on every rank, before any shard is listed.

        Rank 0 refuses other settings (:meth:`check`, before anything is
        written), creates the folder, deletes stale shards and the outputs
        made from them (logging why), and records the settings; the other
        ranks wait for it, then check the folder read-only.
        """
        if self.rank == 0:
            stale = self.check()
            self.out.mkdir(parents=True, exist_ok=True)
            if stale:
                removed = self._remove_shards()
                logger.warning(
                    'Redoing the %s in %s: %s (%d stale files removed)',
                    self.what, self.out, '; '.join(stale), removed)
            if stale or self.recorded_settings() is None:
                write_json_atomic(self.settings_path, self.settings)
        self.barrier()
        if self.rank != 0:
            self.check()

    def _remove_shards(self) -> int:
        files = []
        for pattern in self.outputs + self.shard_patterns:
            files += sorted(self.out.glob(pattern))
        removed = 0
        for path in files:
            if path.is_file():
                path.unlink()
                removed += 1
        return removed

    def todo(self, complete: Callable[[int], bool]) -> List[int]:
        """The shards for which ``complete(shard)`` is false, in order; a
        barrier follows, so every process has listed them before any is
        written."""
        todo = [i for i in range(len(self.ranges)) if not complete(i)]
        self.barrier()
        return todo

    def mine(self, todo: Sequence[int]) -> List[int]:
        """This process's share of ``todo`` (:func:`shards_for_rank`)."""
        return shards_for_rank(todo, self.rank, self.world_size)

    def finish(self) -> bool:
        """Wait for every process; True on rank 0 (which then writes the
        outputs made from all shards)."""
        self.barrier()
        return self.rank == 0
