"""MMEngine 0.10 with torch >= 2.6: the one place fqzoo patches MMEngine.

MMEngine's ``CheckpointLoader`` reads local files with a bare ``torch.load``;
fqzoo re-registers the local-path scheme (prefix ``''``) so that the Runner's
``load_from``, ``resume`` and ``mmengine.runner.load_checkpoint`` read local
files through :func:`fqzoo.utils.checkpoint.safe_load`: tensors and plain
Python values only, and a clear :class:`UnsafeCheckpointError` for anything
else. A safetensors file (``tools/publish_model.py``) comes back as an
MMEngine checkpoint, ``{'state_dict': tensors, 'meta': metadata}`` (JSON
values decoded), which hooks such as ``EMAHook`` expect. Importing
:mod:`fqzoo.engine` applies it.
"""
import json
import os.path as osp
from typing import Any, Callable, Optional, Union

from mmengine.runner.checkpoint import CheckpointLoader

from fqzoo.utils.checkpoint import (
    is_safetensors,
    safe_load,
    safetensors_metadata,
)


def load_from_local_safely(filename: str,
                           map_location: Optional[Union[str, Callable]] = None
                           ) -> Any:
    """MMEngine's local-file checkpoint loader, through :func:`safe_load`.

    Args:
        filename (str): local checkpoint path (``~`` is expanded).
        map_location (str | callable, optional): as in ``torch.load``.

    Returns:
        The loaded checkpoint (tensors and plain Python values).
    """
    path = osp.expanduser(filename)
    checkpoint = safe_load(path, map_location=map_location)
    if osp.isfile(path) and is_safetensors(path):
        return dict(state_dict=checkpoint, meta={
            key: _decoded(value)
            for key, value in safetensors_metadata(path).items()})
    return checkpoint


def _decoded(value: str) -> Any:
    """A safetensors metadata string, JSON-decoded when it is JSON (the
    ``token_layout``), else as it is."""
    try:
        return json.loads(value)
    except ValueError:
        return value


CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_safely,
                                 force=True)
