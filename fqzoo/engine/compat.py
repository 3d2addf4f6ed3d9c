"""MMEngine 0.10 with torch >= 2.6: the one place fqzoo patches MMEngine.

MMEngine's ``CheckpointLoader`` reads local files with a bare ``torch.load``;
fqzoo re-registers the local-path scheme (prefix ``''``) so that the Runner's
``load_from``, ``resume`` and ``mmengine.runner.load_checkpoint`` read local
files through :func:`fqzoo.utils.checkpoint.safe_load`: tensors and plain
Python values only, and a clear :class:`UnsafeCheckpointError` for anything
else. Importing :mod:`fqzoo.engine` applies it.
"""
import os.path as osp
from typing import Any, Callable, Optional, Union

from mmengine.runner.checkpoint import CheckpointLoader

from fqzoo.utils.checkpoint import safe_load


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
    return safe_load(osp.expanduser(filename), map_location=map_location)


CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_safely,
                                 force=True)
