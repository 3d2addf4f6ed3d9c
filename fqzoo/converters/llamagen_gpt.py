"""LlamaGen's released class-conditional GPTs (Sun et al., 2024, arXiv
2406.06525; FoundationVision/LlamaGen ``autoregressive/models/gpt.py``:
GPT-B ... GPT-3B, ``c2i_*.pt``) as fqzoo
:class:`~fqzoo.models.generators.AutoregressiveGenerator` models with G = 1
and a ``ParallelLinearHead``. The key map is in
:mod:`fqzoo.converters.transformer`.
"""
from typing import Dict, Mapping, Optional, Tuple

from torch import Tensor

from .family import ConverterFamily
from .transformer import TOKEN_TABLE, convert_transformer, dropped_keys


def detect_llamagen_gpt(state: Mapping[str, Tensor]) -> Optional[str]:
    """``'c2i'`` for a LlamaGen GPT state dict (``tok_embeddings``), else
    None (text-conditional ``t2i`` ones are detected as ``'t2i'`` and
    refused by :func:`convert_llamagen_gpt`)."""
    if TOKEN_TABLE not in state:
        return None
    return 't2i' if any(k.startswith('cls_embedding.cap_proj')
                        for k in state) else 'c2i'


def convert_llamagen_gpt(state: Mapping[str, Tensor], *,
                         num_heads: Optional[int] = None,
                         grid_size: int = 16
                         ) -> Tuple[Dict[str, Tensor], dict]:
    """``(fqzoo state dict, generator model config)`` of a released
    LlamaGen c2i GPT state dict (``module.`` / ``_orig_mod.`` prefixes
    stripped).

    Args:
        state (Mapping): the released weights.
        num_heads (int, optional): attention heads. Defaults to None (the
            released size of the width: 768: 12, 1024: 16, 1280: 20,
            1536: 24, 2560: 40).
        grid_size (int): token grid side (image size / 16). Defaults to 16.

    Raises:
        KeyError: a missing or unexpected key (named); a t2i checkpoint.
        ValueError: a shape that does not fit.
    """
    if detect_llamagen_gpt(state) == 't2i':
        raise KeyError('Unexpected key "cls_embedding.cap_proj.*": a '
                       'text-conditional t2i checkpoint (only the '
                       'class-conditional c2i GPTs are supported)')
    return convert_transformer(state, 'llamagen', num_heads=num_heads,
                               grid_size=grid_size)


FAMILY = ConverterFamily(
    name='llamagen', kind='generator', origin='FoundationVision/LlamaGen',
    tool='tools/convert/llamagen_gpt.py',
    signature=f'"{TOKEN_TABLE}" (LlamaGen GPT)',
    detect=detect_llamagen_gpt, convert=convert_llamagen_gpt,
    dropped=dropped_keys)
