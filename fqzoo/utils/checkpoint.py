"""Safe checkpoint loading: tensors and plain Python values only.

Every loader in fqzoo goes through :func:`safe_load`, which calls
``torch.load(weights_only=True)``; a file that needs arbitrary unpickling
(code, custom classes) is refused with :class:`UnsafeCheckpointError`
before any of its contents runs.
"""
import pickle
from pathlib import Path
from typing import Any, Union

import torch
from torch import nn


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint holds objects other than tensors and plain values."""


def safe_load(path: Union[str, Path], map_location: Any = 'cpu') -> Any:
    """``torch.load(path, weights_only=True)`` with a clear refusal."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'Checkpoint not found: {path}')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f'Refusing to load {path}: it holds pickled objects other than '
            'tensors and plain Python values, which could run arbitrary '
            f'code. fqzoo loads with weights_only=True. ({err})') from None


def extract_state_dict(checkpoint: Any) -> dict:
    """The model weights of a checkpoint: fqzoo/MMEngine (``state_dict``),
    released FQGAN/LlamaGen (``model``) or a bare state dict."""
    if isinstance(checkpoint, dict):
        for key in ('state_dict', 'model'):
            if isinstance(checkpoint.get(key), dict):
                return checkpoint[key]
        if all(torch.is_tensor(v) for v in checkpoint.values()):
            return checkpoint
    raise KeyError('No model weights found: expected a "state_dict" or '
                   '"model" entry, or a plain state dict')


def load_model_weights(model: nn.Module, path: Union[str, Path],
                       strict: bool = True) -> None:
    """Load a checkpoint's model weights into ``model`` (safely)."""
    state = extract_state_dict(safe_load(path))
    state = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if strict and (missing or unexpected):
        raise KeyError(f'{path} does not match the model: missing keys '
                       f'{missing[:10]}, unexpected keys {unexpected[:10]}')
