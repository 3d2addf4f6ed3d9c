"""The outputs of a finished sampling run, assembled from its shards.

- ``samples.npz``: ``arr_0`` uint8 ``[N, H, W, 3]`` (what the ADM
  evaluator and ``tools/eval_generation.py`` read), ``arr_1`` int64 ``[N]``
  labels;
- ``grid_class_<c>.png``: the first samples of class ``c``;
- ``grid.png``: one row per class;
- ``sampling.json`` (written last): settings, counts, timings, the
  evaluation command.
"""
from pathlib import Path
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np
import torch

from fqzoo.utils.files import write_json_atomic
from fqzoo.visualization.grid import image_grid, save_png

from .plan import per_class_counts
from .shards import npz_arrays, read_shard, shard_path, write_npz_streamed

SAMPLES = 'samples.npz'
RECORD = 'sampling.json'
GRID = 'grid.png'


def timings(generate_s: float, decode_s: float, images: int,
            positions: int, note: str) -> dict:
    """A run record's ``timings``: seconds spent drawing tokens and
    decoding them, images and tokens (positions) per second, and how to
    read them."""
    return dict(
        generate_seconds=round(generate_s, 3),
        decode_seconds=round(decode_s, 3),
        images_per_s=round(images / max(generate_s + decode_s, 1e-9), 3),
        tokens_per_s=round(images * positions / max(generate_s, 1e-9), 3),
        note=note)

def samples_complete(path: Path, num: int) -> bool:
    """Whether ``path`` is a whole ``samples.npz`` of ``num`` samples
    (``arr_0`` and ``arr_1`` of ``num`` rows; a missing or truncated file
    is not), read from the headers only."""
    if not path.is_file():
        return False
    try:
        arrays = npz_arrays(path)
    except ValueError:
        return False
    return {'arr_0', 'arr_1'} <= set(arrays) and \
        arrays['arr_0'][0][:1] == (num,) and arrays['arr_1'][0] == (num,)


def class_grid_name(label: int) -> str:
    """``grid_class_<label>.png``."""
    return f'grid_class_{label}.png'


class _ShardReader:
    """Reads the shards once, in order: yields their images for the
    ``.npz`` and keeps the timings and the first images of each class for
    the grids."""

    def __init__(self, out_dir: Path, ranges: Sequence[Tuple[int, int]],
                 classes: Sequence[int], per_class: int) -> None:
        self.out_dir, self.ranges = out_dir, ranges
        self.per_class = per_class
        self.firsts: Dict[int, List[np.ndarray]] = {c: [] for c in classes}
        self.seconds = np.zeros(2)
        self.tokens_shape: Tuple[int, ...] = ()
        self.tokens_dtype = ''

    def images(self) -> Iterator[np.ndarray]:
        for shard in range(len(self.ranges)):
            data = read_shard(shard_path(self.out_dir, shard))
            self.seconds += data['seconds']
            self.tokens_shape = tuple(data['tokens'].shape[1:])
            self.tokens_dtype = data['tokens'].dtype.name
            for label, image in zip(data['labels'], data['images']):
                kept = self.firsts.get(int(label))
                if kept is not None and len(kept) < self.per_class:
                    kept.append(image)
            yield data['images']


def _grid(images: Sequence[np.ndarray], ncol: int, scale: int) -> np.ndarray:
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    return image_grid(batch, ncol, scale=scale)


def write_grids(out_dir: Path, firsts: Dict[int, List[np.ndarray]], *,
                cols: int = 8, max_classes: int = 50) -> List[str]:
    """``grid_class_<c>.png`` per class and ``grid.png`` (one row of
    ``cols`` samples per class), for the first ``max_classes`` classes.
    Small images are upscaled (nearest) to at least 64 px.

    Returns:
        list[str]: the file names written.
    """
    chosen = list(firsts)[:max_classes]
    if not chosen:
        return []
    size = firsts[chosen[0]][0].shape[0]
    scale = max(1, 64 // size)
    names = []
    for label in chosen:
        save_png(_grid(firsts[label], cols, scale),
                 out_dir / class_grid_name(label))
        names.append(class_grid_name(label))
    rows = [image for label in chosen for image in firsts[label][:cols]]
    save_png(_grid(rows, min(cols, len(firsts[chosen[0]])), scale),
             out_dir / GRID)
    return names + [GRID]


def assemble_outputs(out_dir: Path, labels: np.ndarray,
                     ranges: Sequence[Tuple[int, int]],
                     classes: Sequence[int], *, record: dict,
                     positions: int, grid_per_class: int = 64,
                     grid_cols: int = 8, grid_max_classes: int = 50) -> dict:
    """Write ``samples.npz``, the grids and ``sampling.json`` from the
    complete shards of a run.

    Args:
        out_dir (Path): the run folder.
        labels (np.ndarray): ``[N]`` the class of every sample.
        ranges (Sequence[tuple]): ``[start, stop)`` of every shard.
        classes (Sequence[int]): the classes, in the order asked.
        record (dict): fields of ``sampling.json`` (settings, sampling
            arguments, paths, evaluation command ...).
        positions (int): token positions per image (``h * w``), for
            tokens/s.
        grid_per_class (int): samples in each class grid. Defaults to 64.
        grid_cols (int): samples per grid row. Defaults to 8.
        grid_max_classes (int): classes that get grids (the first ones
            asked). Defaults to 50.

    Returns:
        dict: the record written to ``sampling.json``.
    """
    first = read_shard(shard_path(out_dir, 0))['images']
    reader = _ShardReader(out_dir, ranges, classes, grid_per_class)
    num = len(labels)
    write_npz_streamed(out_dir / SAMPLES, [
        ('arr_0', (num, *first.shape[1:]), np.uint8, reader.images()),
        ('arr_1', (num,), np.int64, [labels])])
    grids = write_grids(out_dir, reader.firsts, cols=grid_cols,
                        max_classes=grid_max_classes)
    generate_s, decode_s = (float(s) for s in reader.seconds)
    record = dict(
        record,
        samples=SAMPLES, num=num, classes=list(classes),
        per_class={str(c): n for c, n in per_class_counts(labels, classes)},
        image_shape=list(first.shape[1:]),
        token_shape=list(reader.tokens_shape),
        token_dtype=reader.tokens_dtype,
        timings=timings(
            generate_s, decode_s, num, positions,
            note='summed over shards (one process\'s time; several '
                 'processes draw world_size times faster); a token is one '
                 'position (its G sub-tokens together)'),
        shards=[dict(file=shard_path(out_dir, i).name, start=start,
                     count=stop - start)
                for i, (start, stop) in enumerate(ranges)],
        grids=grids)
    write_json_atomic(out_dir / RECORD, record)
    return record
