"""Released checkpoint files in, fqzoo checkpoints and configs out.

A converted checkpoint is ``{'state_dict': ..., 'meta': ...}`` of tensors
and plain values (``torch.load(weights_only=True)`` reads it); ``meta``
records the source (repository, file name, sha256, the entry read), the
family and detected layout, the keys dropped and the buffers given their
initial values, the model config, and the token layout
(:mod:`fqzoo.utils.token_layout`) so a generator and a tokenizer that do
not belong together are refused by name.
"""
# Only for unpickling: released training scripts save their argparse
# namespace as ``args``; fqzoo parses no command line here.
from argparse import Namespace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from fqzoo.errors import InputError, InputKeyError
from fqzoo.utils.checkpoint import (
    commit_file,
    safe_load,
    temporary_name,
    write_text_atomic,
)
from fqzoo.utils.files import file_sha256
from fqzoo.utils.token_layout import generator_layout, tokenizer_layout

from .dispatch import FAMILIES, detect_and_convert, detect_family
from .keys import strip_prefixes
from .model import build_model, complete_state

PathLike = Union[str, Path]


def load_checkpoint_file(path: PathLike) -> Any:
    """:func:`~fqzoo.utils.checkpoint.safe_load`, allowing the
    ``argparse.Namespace`` the released training scripts save as ``args``."""
    return safe_load(path, allowed_globals=[Namespace])


def select_weights(checkpoint: Any, path: PathLike, ema: bool = False
                   ) -> Tuple[Dict[str, Tensor], str]:
    """``(state dict, entry)`` of a released checkpoint: ``ema`` with
    ``ema=True``, else ``model``, ``module`` (DeepSpeed), ``state_dict`` or
    the checkpoint itself when it is a bare state dict (FSDP).

    Raises:
        ValueError: not a dict, or an entry holding something else than
            tensors (entry and key named).
        KeyError: no such entry (the entries found listed).
    """
    if not isinstance(checkpoint, dict):
        raise InputError(f'{path} holds a {type(checkpoint).__name__}, not '
                         'a checkpoint dict')
    entries = ['ema'] if ema else ['model', 'module', 'state_dict']
    for entry in entries:
        if isinstance(checkpoint.get(entry), dict):
            state, name = checkpoint[entry], entry
            break
    else:
        if ema or not checkpoint or not all(
                torch.is_tensor(v) for v in checkpoint.values()):
            raise InputKeyError(
                f'{path} has no {" / ".join(entries)} entry of weights '
                f'(entries: {sorted(checkpoint)[:10]})')
        state, name = checkpoint, '(bare state dict)'
    bad = [k for k, v in state.items() if not torch.is_tensor(v)]
    if bad:
        raise InputError(f'{path} entry {name}: "{bad[0]}" is of type '
                         f'{type(state[bad[0]]).__name__}, not a tensor')
    return state, name


def token_layout(family: str, model_cfg: dict,
                 image_sizes: Optional[Sequence[int]] = None) -> dict:
    """The token layout of the converted model (built on the meta device):
    a tokenizer's codebooks, sub-token names, downsample factor and grids
    at ``image_sizes`` (default: the family's), a generator's codebooks and
    grid."""
    target = FAMILIES[family]
    model = build_model(model_cfg)
    if target.kind == 'generator':
        return generator_layout(model)
    sizes = image_sizes or target.image_sizes(model_cfg)
    return tokenizer_layout(model, image_sizes=sizes)


def convert_released(src: PathLike, family: Optional[str] = None, *,
                     ema: bool = False,
                     image_sizes: Optional[Sequence[int]] = None,
                     **options: Any) -> Tuple[dict, dict]:
    """A released checkpoint file as ``(fqzoo checkpoint, model config)``.

    Args:
        src (str | Path): the released ``.pt`` file.
        family (str, optional): the family it must be (``'fqgan'``,
            ``'llamagen_vq'``, ``'llamagen'``, ``'far'``). Defaults to None
            (detected from the keys).
        ema (bool): convert the ``ema`` entry. Defaults to False.
        image_sizes (Sequence[int], optional): a tokenizer's image sizes,
            recorded as grids in the token layout. Defaults to the family's
            (FQGAN: the size its adapters fit; LlamaGen VQ: 256).
        **options: the converter's (:func:`detect_and_convert`).

    Returns:
        tuple[dict, dict]: ``{'state_dict': ..., 'meta': ...}`` of tensors
        and plain values (every parameter and buffer of the fqzoo model),
        and the fqzoo ``model`` config.

    Raises:
        InputKeyError, InputError: the file does not fit the family (a
            missing or unexpected key, a wrong shape): the file, entry and
            culprit named.
    """
    src = Path(src)
    state, entry = select_weights(load_checkpoint_file(src), src, ema)
    try:
        state, prefixes = strip_prefixes(state)
        name, layout = detect_family(state, family)
        _, weights, model_cfg = detect_and_convert(state, name, **options)
        weights, initialised = complete_state(weights, model_cfg,
                                              f'{name} {layout}')
        tokens = token_layout(name, model_cfg, image_sizes)
    except (KeyError, ValueError) as err:
        # the release does not fit: a refusal of the user's file (the
        # tools print it without a traceback), still a KeyError/ValueError
        refusal = InputKeyError if isinstance(err, KeyError) else InputError
        raise refusal(f'{src} ({entry}): {err.args[0]}') from None
    target = FAMILIES[name]
    meta = dict(source=target.origin, family=name, layout=layout,
                src=src.name, sha256=file_sha256(src), entry=entry,
                stripped_prefixes=prefixes, dropped=target.dropped(state),
                buffers_initialised=initialised,
                dtypes=sorted({str(v.dtype) for v in weights.values()}),
                model=model_cfg, token_layout=tokens, converter=target.tool)
    return dict(state_dict=weights, meta=meta), model_cfg


def format_config(value: Any, indent: int = 0) -> str:
    """``value`` as Python source: a dict as ``dict(...)`` and a list of
    them as ``[...]``, on one line when short, else one entry a line."""
    if isinstance(value, dict):
        items = [f'{k}={format_config(v, indent + 4)}'
                 for k, v in value.items()]
        opening, closing = 'dict(', ')'
    elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
        items = [format_config(v, indent + 4) for v in value]
        opening, closing = '[', ']'
    else:
        return repr(value)
    inline = f'{opening}{", ".join(items)}{closing}'
    if indent + len(inline) <= 70 and '\n' not in inline:
        return inline
    pad = ' ' * (indent + 4)
    return f'{opening}\n' + ',\n'.join(pad + item for item in items) + \
        closing


def config_text(model_cfg: dict, src: PathLike, family: str) -> str:
    """A standalone fqzoo config holding ``model_cfg``."""
    target = FAMILIES[family]
    what = ('Dropouts are those of the released training scripts; the '
            "token grid\n# is the converter's --grid-size."
            if target.kind == 'generator' else
            'Inference only: no discriminator, no perceptual loss.')
    return (f'# {Path(src).name} ({target.origin}) converted by '
            f'{target.tool}.\n# {what}\n'
            "default_scope = 'fqzoo'\n"
            f'model = {format_config(model_cfg)}\n')


def write_converted(src: PathLike, dst: PathLike, out_config: PathLike,
                    family: Optional[str] = None, **kwargs: Any) -> dict:
    """Convert ``src`` (:func:`convert_released`), write the checkpoint to
    ``dst`` and the config to ``out_config`` (each atomically, nothing
    written when the conversion fails); returns the meta."""
    checkpoint, model_cfg = convert_released(src, family, **kwargs)
    dst, out_config = Path(dst), Path(out_config)
    dst.parent.mkdir(parents=True, exist_ok=True)
    out_config.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(temporary_name(dst.name))
    torch.save(checkpoint, tmp)
    commit_file(tmp, dst)
    meta = checkpoint['meta']
    write_text_atomic(out_config, config_text(model_cfg, src, meta['family']))
    return meta


def summary(meta: dict) -> List[str]:
    """Lines describing a conversion (what the tools print)."""
    layout = meta['token_layout']
    lines = [f'{meta["src"]}: {meta["family"]} {meta["layout"]} '
             f'({meta["source"]}), entry {meta["entry"]}',
             f'codebooks {layout["codebook_sizes"]}, downsample '
             f'{layout.get("downsample_factor")}, grids '
             f'{layout.get("grids") or layout.get("grid")}']
    if meta['dropped'] or meta['buffers_initialised']:
        lines.append(f'dropped {len(meta["dropped"])} entries, '
                     f'{len(meta["buffers_initialised"])} fqzoo buffers '
                     'at their initial values')
    return lines
