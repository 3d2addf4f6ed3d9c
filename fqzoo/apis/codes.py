"""Encode a config's dataset split to token indices, in resumable shards.

The output folder holds, per shard ``i``, ``codes_{i:05d}.npy`` (``[n, G,
h, w]``, or ``[n, A, G, h, w]`` with ``A`` augmented views) and, when the
dataset has labels, ``labels_{i:05d}.npy`` (``[n]``, int64), plus
``manifest.json``, written last: the settings, the token layout
(:mod:`fqzoo.utils.token_layout`) and the tokenizer checkpoint's sha256.
The shards are those of the shard engine :mod:`fqzoo.utils.shards`:
written atomically, resumed at the missing ones, a folder of other
settings refused, shards of a checkpoint file that has changed since
redone; ``torchrun`` spreads them over processes.
:class:`fqzoo.datasets.CodeDataset` reads the folder back.

Augmentation follows LlamaGen's ``extract_codes_c2i.py``: ``ten_crop``
resizes each image by 1.1 and takes the 4 corner and the centre crops of the
original size, and their horizontal flips (``A = 10``); ``flip`` adds the
horizontal flip of every view (``A = 2`` alone).
"""
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from fqzoo.errors import InputKeyError
from fqzoo.registry import DATASETS
from fqzoo.utils.files import write_json_atomic
from fqzoo.utils.labels import class_labels
from fqzoo.utils.shards import ShardRun, no_barrier, save_npy, source_file
from fqzoo.utils.token_layout import (
    check_same_layout,
    checkpoint_layout,
    index_dtype,
    tokenizer_layout,
)

MANIFEST = 'manifest.json'
SHARD_PATTERNS = ('codes_*.npy', 'labels_*.npy')
TEN_CROP_SCALE = 1.1


def build_split_dataset(cfg: Config, split: str) -> Dataset:
    """The dataset of ``cfg.{split}_dataloader`` (split: train, val, test)."""
    key = f'{split}_dataloader'
    if cfg.get(key) is None:
        raise InputKeyError(f'The config has no {key}')
    init_default_scope(cfg.get('default_scope', 'fqzoo'))
    return DATASETS.build(cfg[key]['dataset'])


def augment_views(images: Tensor, *, ten_crop: bool = False,
                  flip: bool = False) -> Tensor:
    """The augmented views of a batch, ``[B, A, 3, H, W]``.

    Args:
        images (Tensor): ``[B, 3, H, W]``.
        ten_crop (bool): the 5 crops of size ``H x W`` (corners, centre) of
            the images resized by 1.1, and their horizontal flips.
            Defaults to False.
        flip (bool): append the horizontal flip of every view (ignored with
            ``ten_crop``, which has them). Defaults to False.

    Returns:
        Tensor: ``A = 10`` with ``ten_crop``, 2 with ``flip``, else 1.
    """
    height, width = images.shape[-2:]
    if ten_crop:
        big = F.interpolate(images, scale_factor=TEN_CROP_SCALE,
                            mode='bicubic', align_corners=False,
                            antialias=True).clamp(-1, 1)
        big_h, big_w = big.shape[-2:]
        top, left = (big_h - height) // 2, (big_w - width) // 2
        corners = [(0, 0), (0, big_w - width), (big_h - height, 0),
                   (big_h - height, big_w - width), (top, left)]
        views = [big[..., y:y + height, x:x + width] for y, x in corners]
        views += [view.flip(-1) for view in views]
    else:
        views = [images] + ([images.flip(-1)] if flip else [])
    return torch.stack(views, dim=1)


def _shard_files(shard: int, with_labels: bool) -> List[str]:
    return [f'codes_{shard:05d}.npy'] + \
        ([f'labels_{shard:05d}.npy'] if with_labels else [])


def _shard_complete(out_dir: Path, shard: int, count: int,
                    with_labels: bool) -> bool:
    """Every file of the shard is there, whole, with ``count`` rows (a
    labels file of another length than its codes is not complete)."""
    for name in _shard_files(shard, with_labels):
        path = out_dir / name
        try:
            if not path.is_file() or \
                    len(np.load(path, mmap_mode='r')) != count:
                return False
        except (OSError, ValueError, EOFError):
            return False
    return True


def _label(sample: dict) -> Optional[int]:
    data_samples = sample.get('data_samples')
    label = data_samples.get('label') if isinstance(data_samples, dict) \
        else getattr(data_samples, 'label', None)
    return None if label is None else \
        int(class_labels(label, 'the label of sample 0'))


def _image_size(sample: dict) -> Tuple[int, int]:
    return tuple(int(v) for v in sample['inputs'].shape[-2:])


def _batches(dataset: Dataset, indices: Sequence[int], batch_size: int,
             num_workers: int) -> Iterator[dict]:
    loader = DataLoader(Subset(dataset, list(indices)), batch_size=batch_size,
                        num_workers=num_workers, collate_fn=default_collate)
    yield from loader


@torch.no_grad()
def encode_views(tokenizer, data: dict, *, ten_crop: bool = False,
                 flip: bool = False) -> Tensor:
    """Token indices of a collated batch, ``[B, A, G, h, w]``."""
    images = tokenizer.data_preprocessor(data, False)['inputs']
    views = augment_views(images, ten_crop=ten_crop, flip=flip)
    codes = tokenizer.encode(views.flatten(0, 1))
    return codes.unflatten(0, views.shape[:2])


def _checked_layout(tokenizer, checkpoint: Optional[Union[str, Path]],
                    image_size: Optional[Tuple[int, int]],
                    config: Optional[str]) -> dict:
    """The layout of the codes, refused when the checkpoint records
    another one than the tokenizer built from its config."""
    layout = tokenizer_layout(tokenizer, [image_size] if image_size else ())
    if checkpoint is not None:
        check_same_layout(
            checkpoint_layout(checkpoint), layout,
            first_name=f'the tokenizer checkpoint {checkpoint}',
            second_name=f'the tokenizer built from {config or "its config"}')
    return layout


def extract_codes(tokenizer, dataset: Dataset, out_dir: Union[str, Path], *,
                  checkpoint: Optional[Union[str, Path]] = None,
                  batch_size: int = 32, shard_size: int = 4096,
                  ten_crop: bool = False, flip: bool = False,
                  num_workers: int = 0, meta: Optional[dict] = None,
                  info: Optional[dict] = None, rank: int = 0,
                  world_size: int = 1,
                  barrier: Callable[[], None] = no_barrier,
                  progress: bool = True) -> Optional[dict]:
    """Encode ``dataset`` with ``tokenizer`` into shards under ``out_dir``.

    The shards are those of :class:`~fqzoo.utils.shards.ShardRun`: written
    atomically, complete ones skipped when the run is started again, a
    folder made with other settings (token layout, augmentations, shard
    size, ``meta``) refused, and shards made from a former content of the
    same checkpoint file redone. With several processes each encodes its
    share of the shards; rank 0 writes the manifest last.

    Args:
        tokenizer (ImageTokenizer): in eval mode.
        dataset (Dataset): samples ``dict(inputs=[3, H, W],
            data_samples=dict(label=...))``; labels are stored when the
            first sample has one, and must be whole numbers.
        out_dir (str | Path): output folder (created).
        checkpoint (str | Path, optional): the tokenizer's checkpoint: its
            sha256 is recorded (and compared when the run is started
            again), its recorded token layout must be the tokenizer's.
            Defaults to None (a tokenizer not loaded from a file).
        batch_size (int): images per forward. Defaults to 32.
        shard_size (int): samples per shard. Defaults to 4096.
        ten_crop (bool): see :func:`augment_views`. Defaults to False.
        flip (bool): see :func:`augment_views`. Defaults to False.
        num_workers (int): data loader workers. Defaults to 0.
        meta (dict, optional): settings of the run (e.g. the split),
            recorded in the manifest and compared when started again.
        info (dict, optional): recorded in the manifest only (e.g. the
            config path; ``info['config']`` is named in messages).
        rank (int): this process. Defaults to 0.
        world_size (int): processes encoding together. Defaults to 1.
        barrier (Callable[[], None]): waits for every process. Defaults to
            a no-op.
        progress (bool): a progress bar on rank 0. Defaults to True.

    Returns:
        dict | None: the manifest on rank 0, else None.

    Raises:
        ValueError: the checkpoint's token layout is not the tokenizer's,
            the folder holds codes made with other settings, or a label is
            not a whole number (each message names both sides).
    """
    out = Path(out_dir)
    quantizer = tokenizer.quantizer
    augmented = ten_crop or flip
    num_augs = 10 if ten_crop else (2 if flip else 1)
    first = dataset[0] if len(dataset) else None
    with_labels = first is not None and _label(first) is not None
    layout = _checked_layout(tokenizer, checkpoint,
                             _image_size(first) if first else None,
                             (info or {}).get('config'))
    settings = dict(
        meta or {}, count=len(dataset), shard_size=shard_size,
        augmentations=(['ten_crop'] if ten_crop else
                       ['flip'] if flip else []),
        num_augs=num_augs if augmented else None, token_layout=layout,
        tokenizer=None if checkpoint is None else source_file(checkpoint))
    run = ShardRun(out, settings, total=len(dataset), shard_size=shard_size,
                   what='codes', shard_patterns=SHARD_PATTERNS,
                   outputs=[MANIFEST], rank=rank, world_size=world_size,
                   barrier=barrier)
    run.open()
    ranges = run.ranges
    todo = run.todo(lambda i: _shard_complete(
        out, i, ranges[i][1] - ranges[i][0], with_labels))
    mine = run.mine(todo)
    dtype = index_dtype(int(quantizer.codebook_size))
    bar = ProgressBar(sum(ranges[i][1] - ranges[i][0] for i in mine)) \
        if progress and rank == 0 else None
    device = next(tokenizer.parameters()).device
    for shard in mine:
        start, stop = ranges[shard]
        codes, labels = [], []
        for data in _batches(dataset, range(start, stop), batch_size,
                             num_workers):
            if with_labels:
                labels.append(class_labels(
                    data['data_samples']['label'],
                    f'labels of samples {start} to {stop - 1}'))
            data['inputs'] = data['inputs'].to(device)
            batch = encode_views(tokenizer, data, ten_crop=ten_crop,
                                 flip=flip)
            codes.append(batch.cpu().numpy().astype(dtype))
            if bar is not None:
                bar.update(len(batch))
        array = np.concatenate(codes)
        if not augmented:
            array = array[:, 0]
        if with_labels:
            save_npy(out / f'labels_{shard:05d}.npy', np.concatenate(labels))
        save_npy(out / f'codes_{shard:05d}.npy', array)
    if not run.finish():
        return None
    code_shape: Tuple[int, ...] = ()
    if ranges:
        code_shape = tuple(np.load(out / 'codes_00000.npy',
                                   mmap_mode='r').shape[1:])
    manifest = dict(
        settings,
        info=info or {},
        code_shape=list(code_shape),
        dtype=dtype.name,
        num_codebooks=int(quantizer.num_codebooks),
        codebook_size=int(quantizer.codebook_size),
        codebook_sizes=layout['codebook_sizes'],
        labels=with_labels,
        shards=[dict(codes=f'codes_{i:05d}.npy',
                     labels=f'labels_{i:05d}.npy' if with_labels else None,
                     start=start, count=stop - start)
                for i, (start, stop) in enumerate(ranges)])
    write_json_atomic(out / MANIFEST, manifest)
    return manifest
