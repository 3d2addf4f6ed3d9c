"""Checkpoints of FQGAN's FAR training code (Bai et al., 2024, arXiv
2411.16681; showlab/FQGAN ``autoregressive/models/far_dual.py`` /
``far_triple.py``: FAR-B, FAR-L) as fqzoo
:class:`~fqzoo.models.generators.AutoregressiveGenerator` models with
G = 2 or 3, a ``FactorizedTokenEmbedding`` and a ``FactorizedARHead``.
Released sub-token ``idx_1`` (``tok_embeddings_1``, ``output_1``: the visual
branch) is fqzoo sub-token 0, and so on. The key map is in
:mod:`fqzoo.converters.transformer`.
"""
from typing import Dict, Mapping, Optional, Tuple

from torch import Tensor

from .family import ConverterFamily
from .keys import count_indexed
from .transformer import SUB_TOKEN_TABLE, convert_transformer, dropped_keys

LAYOUTS = {2: 'dual', 3: 'triple'}


def detect_far(state: Mapping[str, Tensor]) -> Optional[str]:
    """``'dual'`` / ``'triple'`` (or ``'<G> sub-tokens'``) for a FAR state
    dict (``tok_embeddings_1``, ...), else None."""
    if 'tok_embeddings_1.weight' not in state:
        return None
    num = count_indexed(state, SUB_TOKEN_TABLE) - 1
    return LAYOUTS.get(num, f'{num} sub-tokens')


def convert_far(state: Mapping[str, Tensor], *,
                num_heads: Optional[int] = None, grid_size: int = 16
                ) -> Tuple[Dict[str, Tensor], dict]:
    """``(fqzoo state dict, generator model config)`` of a released FAR
    state dict (prefixes stripped).

    Args:
        state (Mapping): the released weights.
        num_heads (int, optional): attention heads. Defaults to None (the
            released size of the width: FAR-B 1024: 16, FAR-L 1280: 20).
        grid_size (int): token grid side (image size / 16). Defaults to 16.

    Raises:
        KeyError: a missing or unexpected key (named).
        ValueError: a shape that does not fit.
    """
    return convert_transformer(state, 'far', num_heads=num_heads,
                               grid_size=grid_size)


FAMILY = ConverterFamily(
    name='far', kind='generator', origin='showlab/FQGAN',
    tool='tools/convert/official_far.py',
    signature='"tok_embeddings_1.weight" (FAR)',
    detect=detect_far, convert=convert_far, dropped=dropped_keys)
