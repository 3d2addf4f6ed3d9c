"""The one key-table format of every converter: ordered template pairs.

A :class:`KeyTable` maps a released key to its fqzoo key and back. Each rule
is a pair of templates, ``(released, fqzoo)``, whose ``{field}``\\ s match
the same text on both sides (``{n}``: a number, ``{rest}``: any tail; a
table may declare more, e.g. an alternation of block parameters). Rules are
tried in order and a template must match the whole key, so a specific rule
goes before a general one. Keys the release saves that are not weights
(usage buffers, caches) match ``dropped`` and have no fqzoo key.

Example:
    >>> table = KeyTable('demo', [('quant_conv.{rest}', 'quant_convs.0.{rest}'),
    ...                           ('encoder.{rest}', 'encoder.{rest}')],
    ...                  dropped=[r'quantize\\.codebook_used'])
    >>> table.to_fqzoo('quant_conv.weight')
    'quant_convs.0.weight'
    >>> table.to_released('quant_convs.0.bias')
    'quant_conv.bias'
    >>> table.to_fqzoo('quantize.codebook_used') is None
    True
"""
import re
from typing import Dict, Iterable, List, Mapping, Optional, Pattern, Tuple

from torch import Tensor

FIELDS = {'n': r'\d+', 'rest': r'.+'}
_FIELD = re.compile(r'\{(\w+)\}')


def _compile(template: str, fields: Mapping[str, str]) -> Pattern:
    parts, last = [], 0
    for match in _FIELD.finditer(template):
        name = match[1]
        if name not in fields:
            raise ValueError(f'Template {template!r}: unknown field '
                             f'{{{name}}} (known: {sorted(fields)})')
        parts += [re.escape(template[last:match.start()]),
                  f'(?P<{name}>{fields[name]})']
        last = match.end()
    parts.append(re.escape(template[last:]))
    return re.compile(''.join(parts))


class KeyTable:
    """Released <-> fqzoo key names of one released layout.

    Args:
        name (str): the layout, named in error messages.
        rules (Iterable[tuple[str, str]]): ``(released template, fqzoo
            template)`` pairs, most specific first.
        dropped (Iterable[str]): regular expressions of released keys that
            are not weights (matched against the whole key).
        fields (Mapping[str, str], optional): field name -> regular
            expression, added to :data:`FIELDS`.
    """

    def __init__(self, name: str, rules: Iterable[Tuple[str, str]],
                 dropped: Iterable[str] = (),
                 fields: Optional[Mapping[str, str]] = None) -> None:
        self.name = name
        self.fields = dict(FIELDS, **(fields or {}))
        self.rules: List[Tuple[str, str]] = list(rules)
        self._compiled = [(_compile(src, self.fields), src,
                           _compile(dst, self.fields), dst)
                          for src, dst in self.rules]
        self.dropped = [re.compile(p) for p in dropped]

    def is_dropped(self, key: str) -> bool:
        """Whether the released ``key`` is a non-weight entry."""
        return any(p.fullmatch(key) for p in self.dropped)

    def to_fqzoo(self, key: str) -> Optional[str]:
        """The fqzoo key of a released key; None for a dropped one.

        Raises:
            KeyError: no rule matches (the key and the layout named).
        """
        if self.is_dropped(key):
            return None
        for src, _, _, dst in self._compiled:
            match = src.fullmatch(key)
            if match:
                return dst.format(**match.groupdict())
        raise KeyError(f'Unexpected key "{key}": not part of the released '
                       f'{self.name} layout')

    def to_released(self, key: str) -> str:
        """The released key of an fqzoo key (the inverse of
        :meth:`to_fqzoo`).

        Raises:
            KeyError: no rule matches.
        """
        for _, src, dst, _ in self._compiled:
            match = dst.fullmatch(key)
            if match:
                return src.format(**match.groupdict())
        raise KeyError(f'No released counterpart of "{key}" in the '
                       f'{self.name} layout')

    def convert(self, state: Mapping[str, Tensor]
                ) -> Tuple[Dict[str, Tensor], List[str]]:
        """``(fqzoo state dict, dropped released keys)`` of ``state``.

        Raises:
            KeyError: a key no rule matches, or two released keys that map
                to one fqzoo key.
        """
        out, dropped, source = {}, [], {}
        for key, value in state.items():
            new = self.to_fqzoo(key)
            if new is None:
                dropped.append(key)
                continue
            if new in out:
                raise KeyError(f'"{source[new]}" and "{key}" both map to '
                               f'"{new}" in the {self.name} layout')
            out[new], source[new] = value, key
        return out, dropped


PREFIXES = ('module.', '_orig_mod.')


def strip_prefixes(state: Mapping[str, Tensor]
                   ) -> Tuple[Dict[str, Tensor], List[str]]:
    """Keys without their ``module.`` (DDP) / ``_orig_mod.``
    (``torch.compile``) prefixes, and the prefixes removed.

    Raises:
        KeyError: two keys become one (``module.x`` and ``x``): which of
            the two copies is the weight cannot be told.
    """
    out, source, removed = {}, {}, set()
    for key, value in state.items():
        plain = key
        while plain.startswith(PREFIXES):
            prefix = next(p for p in PREFIXES if plain.startswith(p))
            removed.add(prefix)
            plain = plain[len(prefix):]
        if plain in out:
            raise KeyError(f'"{source[plain]}" and "{key}" both become '
                           f'"{plain}" without their training prefixes')
        out[plain], source[plain] = value, key
    return out, sorted(removed)


def count_indexed(state: Mapping[str, Tensor], pattern: str) -> int:
    """1 + the largest number ``n`` captured by ``pattern`` (a regular
    expression with one group, matched against whole keys); 0 when no key
    matches."""
    found = [int(m[1]) for k in state
             for m in [re.fullmatch(pattern, k)] if m]
    return max(found) + 1 if found else 0


def tensor(state: Mapping[str, Tensor], key: str, why: str,
           dims: int) -> Tensor:
    """``state[key]``, checked to have ``dims`` dimensions.

    Raises:
        KeyError: missing (``why`` says what it was needed for).
        ValueError: another number of dimensions.
    """
    if key not in state:
        raise KeyError(f'Missing key "{key}" (needed for {why})')
    value = state[key]
    if value.dim() != dims:
        raise ValueError(f'"{key}" has shape {tuple(value.shape)}, expected '
                         f'{dims} dimensions')
    return value
