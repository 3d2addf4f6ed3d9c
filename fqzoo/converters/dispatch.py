"""Which released family a state dict is, and its conversion."""
import inspect
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

from torch import Tensor

from fqzoo.errors import InputError, InputKeyError

from . import far, fqgan, llamagen_gpt, llamagen_vq
from .family import ConverterFamily
from .keys import strip_prefixes

# Detection order: tokenizers, then generators (no state dict matches two).
FAMILIES: Dict[str, ConverterFamily] = {f.name: f for f in (
    fqgan.FAMILY, llamagen_vq.FAMILY, llamagen_gpt.FAMILY, far.FAMILY)}


class Conversion(NamedTuple):
    """What :func:`detect_and_convert` returns."""
    family: str
    state_dict: Dict[str, Tensor]
    config: dict


def get_family(name: str) -> ConverterFamily:
    """The family called ``name``.

    Raises:
        ValueError: no such family (the known ones listed).
    """
    if name not in FAMILIES:
        raise ValueError(f'family must be one of {sorted(FAMILIES)}, got '
                         f'{name!r}')
    return FAMILIES[name]


def detect_family(state: Mapping[str, Tensor],
                  family: Optional[str] = None) -> Tuple[str, str]:
    """``(family, layout)`` of a released state dict (prefixes stripped).

    Args:
        state (Mapping): released keys -> tensors.
        family (str, optional): the family it must be. Defaults to None
            (any).

    Raises:
        ValueError: ``family`` is unknown, or the state dict is another
            family's (its converter named).
        KeyError: no family recognises the state dict (the keys that
            identify each named, and the first keys found).
    """
    wanted = [get_family(family)] if family else list(FAMILIES.values())
    for candidate in wanted:
        layout = candidate.detect(state)
        if layout:
            return candidate.name, layout
    keys = sorted(state)[:6]
    if family:
        for other in FAMILIES.values():
            if other.name != family and other.detect(state):
                raise InputError(f'a {other.name} checkpoint, not {family}:'
                                 f' convert it with {other.tool}')
        raise InputKeyError(f'Missing key {wanted[0].signature}: not a '
                            f'released {family} checkpoint (keys: {keys})')
    raise InputKeyError('No released layout recognised: none of ' + ', '.join(
        f.signature for f in wanted) + f' (keys: {keys})')


def _options_of(target: ConverterFamily, options: Dict[str, Any]
                ) -> Dict[str, Any]:
    """The ``options`` ``target``'s converter takes.

    Raises:
        TypeError: an option no family's converter takes.
    """
    def names(f: ConverterFamily) -> List[str]:
        params = inspect.signature(f.convert).parameters.values()
        return [p.name for p in params if p.kind == p.KEYWORD_ONLY]

    known = {n for f in FAMILIES.values() for n in names(f)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f'Unknown conversion option(s) {unknown}: the '
                        f'converters take {sorted(known)}')
    return {k: v for k, v in options.items() if k in names(target)}


def detect_and_convert(state: Mapping[str, Tensor],
                       family: Optional[str] = None,
                       **options: Any) -> Conversion:
    """Detect the released family of ``state`` and convert it.

    Args:
        state (Mapping): a released state dict (``module.`` /
            ``_orig_mod.`` prefixes are stripped here).
        family (str, optional): the family it must be. Defaults to None
            (detected).
        **options: converter options (``config`` for FQGAN, ``num_heads``
            and ``grid_size`` for the GPTs); those the detected family's
            converter does not take are not passed.

    Returns:
        Conversion: ``(family, state_dict, config)``: the family's name,
        the weights under fqzoo's keys (buffers fqzoo adds that the
        release has no counterpart of, such as usage statistics, are not
        among them) and the fqzoo ``model`` config.

    Raises:
        KeyError: no family recognised, or a missing / unexpected key.
        ValueError: another family than ``family``, or a shape that does
            not fit.

    Example:
        >>> family, weights, model_cfg = detect_and_convert(state)
    """
    state, _ = strip_prefixes(state)
    name, _ = detect_family(state, family)
    target = FAMILIES[name]
    weights, config = target.convert(state, **_options_of(target, options))
    return Conversion(name, weights, config)
