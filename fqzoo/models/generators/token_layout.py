"""Where a generator learns its token grid and sub-codebook sizes (the
layout as recorded in checkpoints and compared between models is
:mod:`fqzoo.utils.token_layout`).

Never hard-coded: from explicit ``grid_size`` / ``codebook_sizes``, from a
folder of extracted codes (its ``manifest.json``, written by
``tools/extract_codes.py``), or from the tokenizer config and image size.
"""
import json
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

from mmengine.config import Config
from mmengine.registry import init_default_scope

from fqzoo.errors import InputError, InputFileNotFoundError

TokenSource = Union[None, str, dict]


def layout_from_codes(codes_root: Union[str, Path]
                      ) -> Tuple[Tuple[int, int], List[int]]:
    """``(grid, codebook_sizes)`` of an extracted-codes folder."""
    path = Path(codes_root) / 'manifest.json'
    if not path.is_file():
        raise InputFileNotFoundError(
            f'{path} not found: the generator reads its token grid and '
            'codebook sizes from it (extract codes with '
            'tools/extract_codes.py), or set grid_size and codebook_sizes '
            'in the config')
    manifest = json.loads(path.read_text())
    shape, sizes = manifest.get('code_shape'), manifest.get('codebook_sizes')
    if not shape or len(shape) < 2 or not sizes:
        raise InputError(
            f'{path} records no token layout (code_shape {shape!r}, '
            f'codebook_sizes {sizes!r}): an extraction that wrote no codes, '
            'or a manifest from elsewhere; extract codes again with '
            'tools/extract_codes.py, or set grid_size and codebook_sizes '
            'in the config')
    height, width = shape[-2:]
    return (int(height), int(width)), [int(v) for v in sizes]


def layout_from_tokenizer(config: Union[str, Path, Config],
                          image_size: Union[int, Sequence[int]]
                          ) -> Tuple[Tuple[int, int], List[int]]:
    """``(grid, codebook_sizes)`` of a tokenizer config at ``image_size``:
    its quantizer's ``num_codebooks`` x ``codebook_size`` and its encoder's
    ``downsample_factor``."""
    from fqzoo.registry import MODELS, QUANTIZERS
    cfg = Config.fromfile(str(config)) if not isinstance(config, Config) \
        else config
    init_default_scope(cfg.get('default_scope', 'fqzoo'))
    quantizer = QUANTIZERS.build(cfg.model.quantizer)
    encoder = MODELS.build(cfg.model.encoder)
    factor = getattr(encoder, 'downsample_factor', None)
    if factor is None:
        raise AttributeError(f'The encoder of {config} has no '
                             'downsample_factor: set grid_size in the '
                             'generator config')
    size = (image_size, image_size) if isinstance(image_size, int) \
        else tuple(image_size)
    if size[0] % factor or size[1] % factor:
        raise InputError(f'image size {size} is not divisible by the '
                         f'tokenizer\'s downsample factor {factor}')
    grid = (size[0] // factor, size[1] // factor)
    return grid, [int(quantizer.codebook_size)] * int(quantizer.num_codebooks)


def resolve_token_layout(grid_size: Optional[Sequence[int]],
                         codebook_sizes: Optional[Sequence[int]],
                         tokens: TokenSource = None
                         ) -> Tuple[Tuple[int, int], List[int]]:
    """Explicit values win; the rest come from ``tokens``.

    Args:
        grid_size (Sequence[int], optional): ``(h, w)`` or None.
        codebook_sizes (Sequence[int], optional): one entry per sub-token.
        tokens (str | dict, optional): a codes folder, or
            ``dict(tokenizer=CONFIG, image_size=S)``.
    """
    if grid_size is None or codebook_sizes is None:
        if tokens is None:
            raise InputError('The generator needs grid_size and '
                             'codebook_sizes, or tokens= (a codes folder, '
                             'or dict(tokenizer=CONFIG, image_size=S)) to '
                             'read them from')
        if isinstance(tokens, (str, Path)):
            grid, sizes = layout_from_codes(tokens)
        else:
            grid, sizes = layout_from_tokenizer(tokens['tokenizer'],
                                                tokens['image_size'])
        grid_size = grid_size or grid
        codebook_sizes = codebook_sizes or sizes
    grid = tuple(int(v) for v in grid_size)
    if len(grid) != 2 or min(grid) < 1:
        raise InputError(f'grid_size must be (h, w), got {grid_size}')
    return grid, [int(v) for v in codebook_sizes]
