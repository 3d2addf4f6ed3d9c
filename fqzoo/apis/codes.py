"""Encode a config's dataset split to token indices, in resumable shards.

The output folder holds, per shard ``i``, ``codes_{i:05d}.npy`` (``[n, G,
h, w]``, or ``[n, A, G, h, w]`` with ``A`` augmented views) and, when the
dataset has labels, ``labels_{i:05d}.npy`` (``[n]``, int64), plus
``manifest.json``, written last. Every file is written to a temporary name
and renamed, so a shard file that exists is complete and an interrupted
extraction resumes at the first missing shard. :class:`fqzoo.datasets.
CodeDataset` reads the folder back.

Augmentation follows LlamaGen's ``extract_codes_c2i.py``: ``ten_crop``
resizes each image by 1.1 and takes the 4 corner and the centre crops of the
original size, and their horizontal flips (``A = 10``); ``flip`` adds the
horizontal flip of every view (``A = 2`` alone).
"""
import os
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from fqzoo.registry import DATASETS
from fqzoo.utils.files import check_settings, write_json_atomic

MANIFEST = 'manifest.json'
TEN_CROP_SCALE = 1.1


def build_split_dataset(cfg: Config, split: str) -> Dataset:
    """The dataset of ``cfg.{split}_dataloader`` (split: train, val, test)."""
    key = f'{split}_dataloader'
    if cfg.get(key) is None:
        raise KeyError(f'The config has no {key}')
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


def index_dtype(codebook_size: int) -> np.dtype:
    """int16 when every index fits, else int32."""
    return np.dtype(np.int16 if codebook_size <= 2 ** 15 else np.int32)


def shard_ranges(total: int, shard_size: int) -> List[Tuple[int, int]]:
    """``[start, stop)`` of each shard."""
    return [(start, min(start + shard_size, total))
            for start in range(0, total, shard_size)]


def _save_npy(array: np.ndarray, path: Path) -> None:
    tmp = path.with_name(f'.{path.stem}.tmp.npy')
    np.save(tmp, array)
    os.replace(tmp, path)


def _shard_complete(out_dir: Path, shard: int, count: int,
                    with_labels: bool) -> bool:
    names = [f'codes_{shard:05d}.npy'] + \
        ([f'labels_{shard:05d}.npy'] if with_labels else [])
    for name in names:
        path = out_dir / name
        if not path.is_file() or len(np.load(path, mmap_mode='r')) != count:
            return False
    return True


def _label(sample: dict) -> Optional[int]:
    data_samples = sample.get('data_samples')
    label = data_samples.get('label') if isinstance(data_samples, dict) \
        else getattr(data_samples, 'label', None)
    return None if label is None else int(label)


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


def extract_codes(tokenizer, dataset: Dataset, out_dir: str, *,
                  batch_size: int = 32, shard_size: int = 4096,
                  ten_crop: bool = False, flip: bool = False,
                  num_workers: int = 0, meta: Optional[dict] = None) -> dict:
    """Encode ``dataset`` with ``tokenizer`` into shards under ``out_dir``.

    Shards that are already complete (same run settings, see
    ``meta``) are skipped. The manifest is written last.

    Args:
        tokenizer (ImageTokenizer): in eval mode.
        dataset (Dataset): samples ``dict(inputs=[3, H, W],
            data_samples=dict(label=...))``; labels are stored when the
            first sample has one.
        out_dir (str): output folder (created).
        batch_size (int): images per forward. Defaults to 32.
        shard_size (int): samples per shard. Defaults to 4096.
        ten_crop (bool): see :func:`augment_views`. Defaults to False.
        flip (bool): see :func:`augment_views`. Defaults to False.
        num_workers (int): data loader workers. Defaults to 0.
        meta (dict, optional): recorded in the manifest (config, checkpoint,
            split ...). A folder holding shards of a run with other
            settings is refused.

    Returns:
        dict: the manifest.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    quantizer = tokenizer.quantizer
    augmented = ten_crop or flip
    num_augs = 10 if ten_crop else (2 if flip else 1)
    settings = dict(meta or {}, count=len(dataset), shard_size=shard_size,
                    augmentations=(['ten_crop'] if ten_crop else
                                   ['flip'] if flip else []),
                    num_augs=num_augs if augmented else None)
    check_settings(out, settings, what='codes')
    with_labels = len(dataset) > 0 and _label(dataset[0]) is not None
    dtype = index_dtype(int(quantizer.codebook_size))
    ranges = shard_ranges(len(dataset), shard_size)
    todo = [i for i, (start, stop) in enumerate(ranges)
            if not _shard_complete(out, i, stop - start, with_labels)]
    progress = ProgressBar(sum(ranges[i][1] - ranges[i][0] for i in todo))
    device = next(tokenizer.parameters()).device
    code_shape: Tuple[int, ...] = ()
    for shard in todo:
        start, stop = ranges[shard]
        codes, labels = [], []
        for data in _batches(dataset, range(start, stop), batch_size,
                             num_workers):
            data['inputs'] = data['inputs'].to(device)
            batch = encode_views(tokenizer, data, ten_crop=ten_crop,
                                 flip=flip)
            codes.append(batch.cpu().numpy().astype(dtype))
            if with_labels:
                labels.append(np.asarray(data['data_samples']['label'],
                                         dtype=np.int64))
            progress.update(len(batch))
        array = np.concatenate(codes)
        if not augmented:
            array = array[:, 0]
        _save_npy(array, out / f'codes_{shard:05d}.npy')
        if with_labels:
            _save_npy(np.concatenate(labels), out / f'labels_{shard:05d}.npy')
    if ranges:
        code_shape = tuple(np.load(out / 'codes_00000.npy',
                                   mmap_mode='r').shape[1:])
    manifest = dict(
        settings,
        code_shape=list(code_shape),
        dtype=dtype.name,
        num_codebooks=int(quantizer.num_codebooks),
        codebook_size=int(quantizer.codebook_size),
        codebook_sizes=[int(quantizer.codebook_size)] *
        int(quantizer.num_codebooks),
        labels=with_labels,
        shards=[dict(codes=f'codes_{i:05d}.npy',
                     labels=f'labels_{i:05d}.npy' if with_labels else None,
                     start=start, count=stop - start)
                for i, (start, stop) in enumerate(ranges)])
    write_json_atomic(out / MANIFEST, manifest)
    return manifest
