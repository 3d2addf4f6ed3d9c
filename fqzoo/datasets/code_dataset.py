"""Token indices extracted by ``tools/extract_codes.py``, read back.

The folder holds ``manifest.json`` and its shards (see
:mod:`fqzoo.apis.codes`); shards are memory-mapped, so a dataset of any size
opens instantly. The dataset exposes the manifest's token layout
(``token_layout``, with ``grid``) and the tokenizer checkpoint the codes
came from (``tokenizer_checkpoint``: ``path`` and ``sha256``), which
training compares with the generator and the other splits'
(:class:`fqzoo.engine.hooks.TokenLayoutHook`).
"""
import json
import random
from pathlib import Path
from typing import List, Optional, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from fqzoo.errors import InputError, InputFileNotFoundError
from fqzoo.registry import DATASETS
from fqzoo.utils.preflight import Requirement

MANIFEST = 'manifest.json'


@DATASETS.register_module()
class CodeDataset(Dataset):
    """Extracted codes (and labels) as a dataset for token models.

    Args:
        data_root (str): folder written by ``tools/extract_codes.py``.
        view (int | str, optional): for codes extracted with augmentation
            (``--ten-crop`` / ``--flip``): None returns all views
            ``[A, G, h, w]``, an int that view ``[G, h, w]``, ``'random'``
            a random view per access (LlamaGen's training). Ignored without
            augmentation. Defaults to None.

    Items are ``dict(codes=LongTensor[G, h, w] (or [A, G, h, w]),
    label=int)``; ``label`` is -1 when the source dataset had none.

    Example:
        >>> ds = CodeDataset('work_dirs/codes/train', view='random')
        >>> ds[0]['codes'].shape
        torch.Size([2, 8, 8])
    """

    def __init__(self, data_root: str,
                 view: Optional[Union[int, str]] = None) -> None:
        root = Path(data_root)
        manifest_path = root / MANIFEST
        if not manifest_path.is_file():
            raise InputFileNotFoundError(
                f'{manifest_path} not found: extract codes with '
                'tools/extract_codes.py first (the manifest is written when '
                'the extraction is complete)')
        self.manifest = json.loads(manifest_path.read_text())
        self.augmented = bool(self.manifest['augmentations'])
        if isinstance(view, str) and view != 'random':
            raise ValueError(f"view must be None, an int or 'random', "
                             f'got {view!r}')
        self.view = view if self.augmented else None
        self.data_root = root
        self.codes = [np.load(root / s['codes'], mmap_mode='r')
                      for s in self.manifest['shards']]
        self.labels = [np.load(root / s['labels'], mmap_mode='r')
                       if s['labels'] else None
                       for s in self.manifest['shards']]
        self._check_counts()
        self.starts = np.cumsum([0] + [s['count']
                                       for s in self.manifest['shards']])
        self.token_layout = self._layout()
        self.tokenizer_checkpoint = self.manifest.get('tokenizer')

    def _check_counts(self) -> None:
        """Every shard's codes and labels hold the manifest's count."""
        for shard, codes, labels in zip(self.manifest['shards'], self.codes,
                                        self.labels):
            files = [(shard['codes'], codes)] + \
                ([(shard['labels'], labels)] if labels is not None else [])
            for name, array in files:
                if len(array) != shard['count']:
                    raise InputError(
                        f'{self.data_root / name} holds {len(array)} rows, '
                        f'the manifest {self.data_root / MANIFEST} says '
                        f'{shard["count"]}'
                        + (f' (and {shard["codes"]} holds {len(codes)} '
                           'grids)' if array is labels else '')
                        + ': extract the codes again into a new folder')

    def _layout(self) -> dict:
        """The manifest's token layout, with the grid of these codes."""
        shape = self.manifest.get('code_shape') or []
        layout = dict(self.manifest.get('token_layout') or {})
        if 'codebook_sizes' in self.manifest:
            layout.setdefault('codebook_sizes',
                              self.manifest['codebook_sizes'])
        if len(shape) >= 2:
            layout['grid'] = [int(v) for v in shape[-2:]]
        return layout

    @classmethod
    def external_requirements(cls, args: dict) -> List[Requirement]:
        """The extraction's ``manifest.json``."""
        return [Requirement(
            what='extracted codes (CodeDataset)', arg='data_root',
            path=str(Path(args['data_root']) / 'manifest.json'),
            source='python tools/extract_codes.py TOKENIZER_CONFIG CKPT '
            '--split SPLIT --out DATA_ROOT (docs/tools.md)')]

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f'index {index} out of range for {len(self)} '
                             'samples')
        index %= len(self)
        shard = int(np.searchsorted(self.starts, index, side='right')) - 1
        offset = index - int(self.starts[shard])
        codes = np.asarray(self.codes[shard][offset], dtype=np.int64)
        if self.view == 'random':
            codes = codes[random.randrange(len(codes))]
        elif self.view is not None:
            codes = codes[self.view]
        labels = self.labels[shard]
        label = int(labels[offset]) if labels is not None else -1
        return dict(codes=torch.from_numpy(codes), label=label)
