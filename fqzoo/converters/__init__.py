"""Converters of released checkpoints into fqzoo models, one module per
released family:

- :mod:`~fqzoo.converters.fqgan`: FQGAN tokenizers (showlab/FQGAN);
- :mod:`~fqzoo.converters.llamagen_vq`: LlamaGen's VQ tokenizers;
- :mod:`~fqzoo.converters.llamagen_gpt`: LlamaGen's class-conditional GPTs;
- :mod:`~fqzoo.converters.far`: FQGAN's FAR generators.

Each family module has a pure ``convert_<family>(state_dict, ...) ->
(fqzoo state dict, model config)``, a ``detect_<family>(state_dict) ->
layout | None`` and a key table in the one format of
:class:`~fqzoo.converters.keys.KeyTable`. :func:`detect_and_convert`
recognises a state dict's family and converts it (what ``get_model`` does
on the fly); :func:`convert_released` and :func:`write_converted` take a
released file and give a checkpoint whose ``meta`` records the source and
the token layout. The command lines are ``tools/convert/*.py``.

Example:
    >>> from fqzoo.converters import detect_and_convert
    >>> family, weights, model_cfg = detect_and_convert(released_state)
"""
from .dispatch import (
    FAMILIES,
    Conversion,
    detect_and_convert,
    detect_family,
    get_family,
)
from .far import convert_far, detect_far
from .files import (
    config_text,
    convert_released,
    load_checkpoint_file,
    select_weights,
    summary,
    token_layout,
    write_converted,
)
from .fqgan import convert_fqgan, detect_fqgan, fqgan_key_table
from .keys import KeyTable, strip_prefixes
from .llamagen_gpt import convert_llamagen_gpt, detect_llamagen_gpt
from .llamagen_vq import (
    convert_llamagen_vq,
    detect_llamagen_vq,
    llamagen_vq_key_table,
)
from .transformer import gpt_key_table, released_shapes

__all__ = [
    'FAMILIES', 'Conversion', 'KeyTable', 'detect_and_convert',
    'detect_family', 'get_family', 'convert_fqgan', 'detect_fqgan',
    'fqgan_key_table', 'convert_llamagen_vq', 'detect_llamagen_vq',
    'llamagen_vq_key_table', 'convert_llamagen_gpt', 'detect_llamagen_gpt',
    'convert_far', 'detect_far', 'gpt_key_table', 'released_shapes',
    'strip_prefixes', 'load_checkpoint_file', 'select_weights',
    'convert_released', 'write_converted', 'config_text', 'summary',
    'token_layout',
]
