"""The token layout: what a grid of token indices means, as plain values.

Every checkpoint fqzoo writes records it in ``meta['token_layout']`` (a
safetensors file: JSON under the metadata key ``token_layout``), and so do
the codes folders of ``tools/extract_codes.py`` (``manifest.json``), so a
generator, its tokenizer and a codes folder that do not belong together are
refused by name (:func:`check_same_layout`) instead of combined silently.

A layout is a dict of JSON values; a key that is absent or None is unknown
and not compared:

- ``codebook_sizes``: ``[V_0, ..., V_{G-1}]``, one per sub-token, in the
  order of the ``G`` axis of ``[B, G, h, w]`` indices;
- ``sub_tokens``: the branch name of each sub-token, in the same order: a
  branch a semantic regularizer reads is named after it (``semantic_clip``:
  its loss key without ``loss_``), a branch only the reconstruction shapes
  is ``pixel``; several sub-codebooks of one branch (residual levels) add
  ``.<level>``;
- ``downsample_factor``: image pixels per token, per side;
- ``grids``: ``{'HxW': [h, w]}``, the token grid of each image size the
  model was trained or evaluated at;
- ``grid``: ``[h, w]``, the one grid a token generator models.

Converters and publishing call :func:`make_layout` (or
:func:`tokenizer_layout` / :func:`generator_layout` on a built model, or the
model's own ``token_layout()``) and store the result as
``meta['token_layout']`` (:func:`layout_meta` for safetensors metadata);
loaders read it back with :func:`checkpoint_layout`. Beside it, a generator
trained on codes records ``meta['tokenizer_checkpoint']`` (the path and
sha256 of the tokenizer checkpoint that made them), and a file made from
another (a published copy) may record ``meta['source_sha256']``, the sha256
of the file it was made from, so a copy pairs like its source.

Example:
    >>> make_layout([16384, 16384], sub_tokens=['semantic_clip', 'pixel'],
    ...             downsample_factor=16, image_sizes=[256])['grids']
    {'256x256': [16, 16]}
"""
import json
import zipfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from fqzoo.errors import InputError

KEY = 'token_layout'
#: ``meta`` key of a generator checkpoint: the tokenizer checkpoint whose
#: codes it was trained on (``dict(path=..., sha256=...)``).
TOKENIZER_KEY = 'tokenizer_checkpoint'
#: ``meta`` key of a file derived from another (a published copy): the
#: sha256 of the file it was made from.
SOURCE_KEY = 'source_sha256'
COMPARED = ('codebook_sizes', 'sub_tokens', 'downsample_factor', 'grid')
Size = Union[int, Sequence[int]]


def size_key(size: Size) -> str:
    """``'HxW'`` of an image size (an int is square)."""
    height, width = (size, size) if isinstance(size, int) else size
    return f'{int(height)}x{int(width)}'


def make_layout(codebook_sizes: Sequence[int], *,
                sub_tokens: Optional[Sequence[str]] = None,
                downsample_factor: Optional[int] = None,
                image_sizes: Iterable[Size] = (),
                grids: Optional[Dict[str, Sequence[int]]] = None,
                grid: Optional[Sequence[int]] = None) -> dict:
    """A token layout of plain values (see the module docstring).

    Args:
        codebook_sizes (Sequence[int]): codes per sub-token, in order.
        sub_tokens (Sequence[str], optional): branch name per sub-token.
        downsample_factor (int, optional): pixels per token, per side.
        image_sizes (Iterable[int | Sequence[int]]): image sizes whose grid
            is ``size // downsample_factor`` (needs the factor).
        grids (dict, optional): more ``{'HxW': [h, w]}`` entries.
        grid (Sequence[int], optional): a generator's ``[h, w]``.

    Raises:
        ValueError: ``sub_tokens`` not one per codebook, or an image size
            the factor does not divide.
    """
    sizes = [int(v) for v in codebook_sizes]
    if sub_tokens is not None and len(sub_tokens) != len(sizes):
        raise ValueError(f'{len(sub_tokens)} sub-token names {list(sub_tokens)}'
                         f' for {len(sizes)} codebooks {sizes}')
    table = {key: [int(v) for v in value]
             for key, value in (grids or {}).items()}
    for size in image_sizes:
        if downsample_factor is None:
            raise ValueError('image_sizes need the downsample factor')
        height, width = (size, size) if isinstance(size, int) else size
        if height % downsample_factor or width % downsample_factor:
            raise ValueError(f'image size {size_key(size)} is not divisible '
                             f'by the downsample factor {downsample_factor}')
        table[size_key(size)] = [int(height) // downsample_factor,
                                 int(width) // downsample_factor]
    layout = dict(
        codebook_sizes=sizes,
        sub_tokens=None if sub_tokens is None else [str(s) for s in sub_tokens],
        downsample_factor=None if downsample_factor is None
        else int(downsample_factor),
        grids=dict(sorted(table.items())))
    if grid is not None:
        layout['grid'] = [int(v) for v in grid]
    return layout


def _inner(module):
    """A submodule under its distributed wrappers (``.module``)."""
    while isinstance(getattr(module, 'module', None), torch.nn.Module):
        module = module.module
    return module


def _branch_names(tokenizer) -> List[str]:
    quantizer = _inner(tokenizer.quantizer)
    names = ['pixel'] * int(getattr(quantizer, 'num_branches', 1))
    for reg in _inner(getattr(tokenizer, 'regularizers', ())):
        branch, key = getattr(reg, 'branch', None), getattr(reg, 'key', '')
        if isinstance(branch, int) and 0 <= branch < len(names) and key:
            names[branch] = key[len('loss_'):] if key.startswith('loss_') \
                else key
    return names


def tokenizer_layout(tokenizer, image_sizes: Iterable[Size] = ()) -> dict:
    """The layout of a built tokenizer (``ImageTokenizer`` or any model
    with a ``quantizer`` of the quantizer contract and an ``encoder`` with
    ``downsample_factor``).

    Args:
        tokenizer (nn.Module): the tokenizer (unwrapped).
        image_sizes (Iterable[int | Sequence[int]]): sizes to give grids
            of (those it was trained or evaluated at). Defaults to ().
    """
    quantizer = _inner(tokenizer.quantizer)
    groups = int(quantizer.num_codebooks)
    branches = _branch_names(tokenizer)
    per_branch = max(1, groups // len(branches))
    sub_tokens = [branches[min(g // per_branch, len(branches) - 1)]
                  + (f'.{g % per_branch}' if per_branch > 1 else '')
                  for g in range(groups)]
    factor = getattr(_inner(getattr(tokenizer, 'encoder', None)),
                     'downsample_factor', None)
    return make_layout([int(quantizer.codebook_size)] * groups,
                       sub_tokens=sub_tokens, downsample_factor=factor,
                       image_sizes=image_sizes if factor else ())


def generator_layout(generator) -> dict:
    """What a built token generator knows of its layout: its
    ``codebook_sizes`` and ``grid`` (the rest comes from the codes it was
    trained on, recorded in its checkpoint)."""
    return make_layout(generator.codebook_sizes,
                       grid=list(generator.grid_size))


def merge_layouts(primary: Optional[dict], extra: Optional[dict]) -> dict:
    """``primary`` with the keys it lacks (or leaves None) taken from
    ``extra``; ``grids`` are united, ``primary``'s first."""
    merged = dict(extra or {})
    for key, value in (primary or {}).items():
        if value is not None:
            merged[key] = value
    merged['grids'] = dict((extra or {}).get('grids') or {},
                           **((primary or {}).get('grids') or {}))
    return merged


def layout_differences(first: Optional[dict], second: Optional[dict]
                       ) -> List[Tuple[str, object, object]]:
    """``(key, first value, second value)`` for each key on which two
    layouts disagree; keys unknown to either side are not compared, nor
    grids of image sizes only one side lists."""
    first, second = first or {}, second or {}
    diffs = []
    for key in COMPARED:
        one, two = first.get(key), second.get(key)
        if one is not None and two is not None and \
                json.loads(json.dumps(one)) != json.loads(json.dumps(two)):
            diffs.append((key, one, two))
    grids_one, grids_two = first.get('grids') or {}, second.get('grids') or {}
    for size in sorted(set(grids_one) & set(grids_two)):
        if list(grids_one[size]) != list(grids_two[size]):
            diffs.append((f'grid at {size}', grids_one[size],
                          grids_two[size]))
    return diffs


def check_same_layout(first: Optional[dict], second: Optional[dict], *,
                      first_name: str, second_name: str) -> None:
    """Refuse two layouts that disagree.

    Args:
        first, second (dict | None): layouts (None: unknown, passes).
        first_name, second_name (str): what each came from (a file, a
            config), named in the message.

    Raises:
        InputError: one message naming both sides and every differing
            value.
    """
    diffs = layout_differences(first, second)
    if diffs:
        raise InputError(
            f'{first_name} and {second_name} do not belong together: their '
            'token layouts differ (' + '; '.join(
                f'{key} {one} in {first_name}, {two} in {second_name}'
                for key, one, two in diffs) + ')')


def layout_meta(layout: dict) -> Dict[str, str]:
    """The layout as safetensors metadata (string values):
    ``{'token_layout': <JSON>}``."""
    return {KEY: json.dumps(layout, sort_keys=True)}


def checkpoint_meta(path: Union[str, Path]) -> dict:
    """The ``meta`` dict of a checkpoint, read without loading its
    tensors (a memory-mapped ``torch.load(weights_only=True)``); for a
    safetensors file, its metadata with JSON values decoded. Empty when the
    file has none.

    Raises:
        InputError: the file is neither (named in the message).
    """
    from fqzoo.utils.checkpoint import is_safetensors, safetensors_metadata
    path = Path(path)
    if is_safetensors(path):
        meta = {}
        for key, value in safetensors_metadata(path).items():
            try:
                meta[key] = json.loads(value)
            except ValueError:
                meta[key] = value
        return meta
    if not zipfile.is_zipfile(path):
        raise InputError(f'{path} is not a torch.save zip archive or a '
                         'safetensors file (truncated?): its token layout '
                         'cannot be read')
    try:
        data = torch.load(path, map_location='cpu', weights_only=True,
                          mmap=True)
    except Exception as err:  # noqa: BLE001 - named in the message below
        raise InputError(f'{path} cannot be read as a checkpoint '
                         f'({type(err).__name__}: {err})') from None
    meta = data.get('meta') if isinstance(data, dict) else None
    return dict(meta) if isinstance(meta, dict) else {}


def checkpoint_layout(path: Union[str, Path]) -> Optional[dict]:
    """``meta['token_layout']`` of a checkpoint (None when it records
    none, as released files converted before layouts existed)."""
    layout = checkpoint_meta(path).get(KEY)
    return layout if isinstance(layout, dict) else None


def index_dtype(codebook_size: int) -> np.dtype:
    """The dtype token indices are stored in: int16 when every index of a
    ``codebook_size`` codebook fits, else int32."""
    return np.dtype(np.int16 if codebook_size <= 2 ** 15 else np.int32)
