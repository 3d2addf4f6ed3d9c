"""Safe checkpoint loading: tensors and plain Python values only.

Every loader in fqzoo goes through :func:`safe_load`, which calls
``torch.load(weights_only=True)``; a file that needs arbitrary unpickling
(code, custom classes) is refused with :class:`UnsafeCheckpointError`
before any of its contents runs. MMEngine's local-file loader is routed
through it by :mod:`fqzoo.engine.compat`.

For the same reason fqzoo's checkpoints hold only tensors and plain values:
:func:`plain_message_hub_state` converts MMEngine's message hub state (numpy
arrays, ``HistoryBuffer`` objects) when saving and
:func:`restore_message_hub_state` rebuilds it when loading.

Safetensors files (``.safetensors``, e.g. the models
``tools/publish_model.py`` writes) load through :func:`safe_load` too: they
hold nothing but tensors, and :func:`safetensors_metadata` reads their
string metadata.

Checkpoints are also written atomically (:func:`commit_file`,
:func:`write_text_atomic`): a file appears under its final name only once it
is complete and on disk, and :func:`find_resumable_checkpoint` picks the
newest complete checkpoint of a work dir, whatever ``last_checkpoint`` says.
"""
import logging
import os
import pickle
import re
import struct
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from torch import nn

from fqzoo.errors import (
    InputError,
    InputFileNotFoundError,
    InputKeyError,
)


class UnsafeCheckpointError(InputError, RuntimeError):
    """A checkpoint holds objects other than tensors and plain values.

    A refused input (the tools print it as ``error: ...`` and exit 2, no
    traceback) that is still the ``RuntimeError`` it always was."""


def is_safetensors(path: Union[str, Path]) -> bool:
    """Whether ``path`` is a safetensors file: its name ends in
    ``.safetensors``, or it starts as one does (an 8-byte little-endian
    header length, then the header's JSON object, within the file)."""
    path = Path(path)
    if path.suffix == '.safetensors':
        return True
    with open(path, 'rb') as file:
        head = file.read(9)
    if len(head) < 9 or head[8:9] != b'{':
        return False
    return 8 + struct.unpack('<Q', head[:8])[0] <= path.stat().st_size


def load_safetensors(path: Union[str, Path],
                     map_location: Any = 'cpu') -> Dict[str, torch.Tensor]:
    """The tensors of a safetensors file.

    Args:
        path (str | Path): the file.
        map_location (str | torch.device): device to load onto; anything
            else (a callable, a dict) loads onto the CPU. Defaults to 'cpu'.

    Raises:
        InputError: the file is not a complete safetensors file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    device = str(map_location) if isinstance(
        map_location, (str, torch.device)) else 'cpu'
    try:
        return load_file(str(path), device=device)
    except (SafetensorError, OSError, ValueError) as err:
        raise InputError(f'{path} is not a safetensors file (truncated or '
                         f'another format?): {err}') from None


def safetensors_metadata(path: Union[str, Path]) -> Dict[str, str]:
    """The string metadata of a safetensors file's header (empty when it
    has none).

    Raises:
        InputError: the file is not a safetensors file.
    """
    from safetensors import SafetensorError, safe_open
    try:
        with safe_open(str(path), framework='pt') as file:
            return dict(file.metadata() or {})
    except (SafetensorError, OSError, ValueError) as err:
        raise InputError(f'{path} is not a safetensors file (truncated or '
                         f'another format?): {err}') from None


def safe_load(path: Union[str, Path], map_location: Any = 'cpu',
              allowed_globals: Sequence[type] = ()) -> Any:
    """``torch.load(path, weights_only=True)`` with clear refusals; a
    safetensors file (:func:`is_safetensors`) gives its dict of tensors.

    Args:
        path (str | Path): the checkpoint file.
        map_location: as ``torch.load``'s. Defaults to 'cpu'.
        allowed_globals (Sequence[type]): plain classes that may be
            unpickled too (e.g. the ``argparse.Namespace`` released training
            scripts save). Defaults to ().

    Raises:
        InputFileNotFoundError: no such file.
        UnsafeCheckpointError: the file holds other pickled objects.
        InputError: the file is not a PyTorch checkpoint (another format,
            truncated, empty).
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileNotFoundError(f'Checkpoint not found: {path}')
    if is_safetensors(path):
        return load_safetensors(path, map_location)
    with open(path, 'rb') as file:
        legacy = file.read(1) == b'\x80'  # a pickle stream (before torch 1.6)
    if not legacy and not zipfile.is_zipfile(path):
        raise InputError(f'{path} is not a PyTorch checkpoint: neither a '
                         'torch.save zip archive (truncated or empty?) nor '
                         'a legacy pickle')
    try:
        with torch.serialization.safe_globals(list(allowed_globals)):
            return torch.load(path, map_location=map_location,
                              weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError,
            IndexError, ValueError, OSError, struct.error) as err:
        # torch.load(weights_only=True) marks its refusals so (a garbled
        # legacy pickle stream too: torch cannot tell it from code)
        if isinstance(err, pickle.UnpicklingError) and (
                'Weights only load failed' in str(err)):
            raise UnsafeCheckpointError(
                f'Refusing to load {path}: it holds pickled objects other '
                'than tensors and plain Python values, which could run '
                'arbitrary code; fqzoo loads with weights_only=True '
                f'({_refused_global(str(err))})') from None
        raise InputError(f'{path} is not a PyTorch checkpoint (another '
                         f'format, truncated or empty): '
                         f'{type(err).__name__}: {err}') from None


def _refused_global(message: str) -> str:
    """What torch's several-paragraph weights-only refusal names: the
    unpickled global (``Unsupported global: GLOBAL pkg.Class``) or the
    refusal's own last line."""
    found = re.search(r'Unsupported (?:global: GLOBAL|operand) \S+', message)
    if found:
        return found.group(0).strip()
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[-1] if lines else 'weights-only unpickling failed'


def extract_state_dict(checkpoint: Any) -> dict:
    """The model weights of a checkpoint: fqzoo/MMEngine (``state_dict``),
    released FQGAN/LlamaGen (``model``) or a bare state dict."""
    if isinstance(checkpoint, dict):
        for key in ('state_dict', 'model'):
            if isinstance(checkpoint.get(key), dict):
                return checkpoint[key]
        if all(torch.is_tensor(v) for v in checkpoint.values()):
            return checkpoint
    raise InputKeyError('No model weights found: expected a "state_dict" '
                        'or "model" entry, or a plain state dict')


def load_model_weights(model: nn.Module, path: Union[str, Path],
                       strict: bool = True,
                       ignore_prefixes: Sequence[str] = ()) -> None:
    """Load a checkpoint's model weights into ``model`` (safely).

    Keys starting with one of ``ignore_prefixes`` (e.g. the discriminator's,
    when loading a tokenizer for inference) are dropped first.

    Raises:
        InputKeyError: the weights do not fit ``model`` (a checkpoint of
            another architecture): the message names the file and lists the
            missing and unexpected keys and the shape mismatches. Missing
            and unexpected keys are allowed with ``strict=False``; shape
            mismatches never are.
    """
    load_state_dict_checked(model, extract_state_dict(safe_load(path)),
                            path, strict=strict,
                            ignore_prefixes=ignore_prefixes)


def load_state_dict_checked(model: nn.Module, state: Dict[str, Any],
                            source: Union[str, Path], strict: bool = True,
                            ignore_prefixes: Sequence[str] = ()) -> None:
    """Load the state dict ``state`` (read from ``source``, named in the
    errors) into ``model`` as :func:`load_model_weights` does: ``module.``
    prefixes stripped, ``ignore_prefixes`` dropped, every key and shape
    checked."""
    state = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in state.items()}
    state = {k: v for k, v in state.items()
             if not k.startswith(tuple(ignore_prefixes))}
    own = model.state_dict()
    mismatched = [f'{k} {list(v.shape)} vs {list(own[k].shape)}'
                  for k, v in state.items()
                  if k in own and torch.is_tensor(v) and v.shape != own[k].shape]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if mismatched or (strict and (missing or unexpected)):
        raise InputKeyError(
            f'{source} does not match the model {type(model).__name__} '
            f'(another architecture or config?): '
            f'{_listed("missing keys", missing)}, '
            f'{_listed("unexpected keys", unexpected)}, '
            f'{_listed("shape mismatches (file vs model)", mismatched)}')
    model.load_state_dict(state, strict=False)


def _listed(what: str, items: Sequence[str], limit: int = 10) -> str:
    more = f' and {len(items) - limit} more' if len(items) > limit else ''
    return f'{len(items)} {what} {list(items[:limit])}{more}'


def to_plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays turned into Python values.

    Containers (dict, list, tuple) are converted recursively; tensors and
    plain Python values are kept. Anything else is returned as is, so a
    checkpoint that still holds it is refused when loaded.
    """
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return type(value)((k, to_plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(to_plain(v) for v in value)
    return value


def plain_message_hub_state(state: dict) -> dict:
    """MMEngine ``MessageHub.state_dict()`` as tensors and plain values.

    Each ``HistoryBuffer`` of ``log_scalars`` (numpy arrays and a dict of
    bound methods) becomes ``dict(log_history=[...], count_history=[...],
    max_length=n)``; numpy values in ``runtime_info`` become Python numbers.
    :func:`restore_message_hub_state` inverts it.
    """
    scalars = {
        key: dict(log_history=buf.data[0].tolist(),
                  count_history=buf.data[1].tolist(),
                  max_length=buf.max_length)
        for key, buf in state['log_scalars'].items()
    }
    return dict(log_scalars=scalars,
                runtime_info=to_plain(dict(state['runtime_info'])),
                resumed_keys=dict(state['resumed_keys']))


def restore_message_hub_state(state: dict) -> dict:
    """The ``MessageHub.load_state_dict`` input for a state written by
    :func:`plain_message_hub_state` (``HistoryBuffer`` objects rebuilt)."""
    scalars = {}
    for key, buf in state['log_scalars'].items():
        if isinstance(buf, HistoryBuffer):
            scalars[key] = buf
        else:
            scalars[key] = HistoryBuffer(np.asarray(buf['log_history']),
                                         np.asarray(buf['count_history']),
                                         buf['max_length'])
    return dict(state, log_scalars=scalars)


CHECKPOINT_NAME = re.compile(r'^(iter|epoch)_(\d+)\.pth$')


def temporary_name(filename: str) -> str:
    """The name a file is written under before :func:`commit_file` renames
    it: hidden, in the same folder (so the rename is atomic), and not
    matching ``iter_N.pth`` / ``epoch_N.pth``."""
    return f'.{filename}.tmp'


def _fsync_dir(folder: Union[str, Path]) -> None:
    """Flush a folder's entries (a rename) to disk where the OS allows."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def commit_file(tmp: Union[str, Path], path: Union[str, Path]) -> None:
    """Make the complete file ``tmp`` appear as ``path`` atomically.

    ``tmp`` is flushed to disk (fsync), renamed over ``path``
    (``os.replace``, atomic within a folder) and the folder is flushed, so
    after a crash ``path`` is either the old file or the whole new one.

    Args:
        tmp (str | Path): the written file, in the same folder as ``path``.
        path (str | Path): its final name.
    """
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(Path(path).parent)


def write_text_atomic(path: Union[str, Path], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and
    :func:`commit_file`: readers see the old or the new text, never a
    truncated one."""
    path = Path(path)
    tmp = path.with_name(temporary_name(path.name))
    with open(tmp, 'w') as file:
        file.write(text)
    commit_file(tmp, path)


def incomplete_reason(path: Union[str, Path]) -> Optional[str]:
    """Why ``path`` is not a complete checkpoint, or None when it is.

    A ``torch.save`` zip archive is complete when its central directory
    (written last) is there and every member matches its CRC; this reads
    the file once without unpickling anything. Legacy pickle files are
    taken as they are.
    """
    path = Path(path)
    if not path.is_file():
        return 'missing'
    if path.stat().st_size == 0:
        return 'empty'
    with open(path, 'rb') as file:
        if file.read(1) == b'\x80':
            return None
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        return f'truncated or not a checkpoint ({err})'
    return None if bad is None else f'corrupt member {bad}'


def _newest_first(folder: Path, extra: Sequence[Path] = ()) -> List[Path]:
    """``iter_N.pth`` / ``epoch_N.pth`` files in ``folder`` and the existing
    files of ``extra``, newest first (by modification time, then by N)."""
    paths = set(p for p in extra if p.is_file())
    if folder.is_dir():
        paths.update(p for p in folder.iterdir()
                     if CHECKPOINT_NAME.match(p.name) and p.is_file())

    def key(path: Path) -> tuple:
        match = CHECKPOINT_NAME.match(path.name)
        return path.stat().st_mtime_ns, int(match.group(2)) if match else -1

    return sorted(paths, key=key, reverse=True)


def find_resumable_checkpoint(
        work_dir: Union[str, Path],
        logger: Optional[logging.Logger] = None) -> Optional[str]:
    """The newest complete checkpoint to resume a run in ``work_dir`` from.

    Candidates are the file named by ``work_dir/last_checkpoint`` and the
    ``iter_N.pth`` / ``epoch_N.pth`` files of its folder (``work_dir`` when
    there is no ``last_checkpoint``); the newest complete one (see
    :func:`incomplete_reason`) wins. A ``last_checkpoint`` that names a
    missing or incomplete file is reported with a warning naming it, and
    so is every newer incomplete candidate skipped on the way.

    Args:
        work_dir (str | Path): the run's work dir.
        logger (logging.Logger, optional): where warnings go. Defaults to
            this module's logger.

    Returns:
        str | None: the checkpoint path, or None when there is none.
    """
    logger = logger or logging.getLogger(__name__)
    work_dir = Path(work_dir)
    pointer = work_dir / 'last_checkpoint'
    named = None
    if pointer.is_file():
        text = pointer.read_text().strip()
        named = Path(text) if text else None
        if named is None:
            logger.warning(f'{pointer} is empty: looking for the newest '
                           f'complete checkpoint in {work_dir}')
    folder = named.parent if named is not None else work_dir
    if named is not None:
        reason = incomplete_reason(named)
        if reason is not None:
            logger.warning(f'last_checkpoint names {named}, which is '
                           f'{reason}: not resuming from it')
    for path in _newest_first(folder, [named] if named else []):
        reason = incomplete_reason(path)
        if reason is None:
            if named is not None and path != named:
                logger.warning(f'Resuming from {path}, the newest complete '
                               f'checkpoint (last_checkpoint names {named})')
            return str(path)
        if path != named:
            logger.warning(f'Skipping {path}: {reason}')
    return None
