"""MMEngine 0.10 with torch >= 2.6: the one place fqzoo patches MMEngine.

MMEngine's ``CheckpointLoader`` reads local files with a bare ``torch.load``;
fqzoo re-registers the local-path scheme (prefix ``''``) so that the Runner's
``load_from``, ``resume`` and ``mmengine.runner.load_checkpoint`` read local
files through :func:`fqzoo.utils.checkpoint.safe_load`: tensors and plain
Python values only, and a clear :class:`UnsafeCheckpointError` for anything
else. A safetensors file (``tools/publish_model.py``) comes back as an
MMEngine checkpoint, ``{'state_dict': tensors, 'meta': metadata}`` (JSON
values decoded), which hooks such as ``EMAHook`` expect.

MMEngine also formats the same config text with yapf up to seven times in
one training run (``Config.pretty_text``: the config log, its dump, the
visualizer, the runtime-info hook and every checkpoint's ``meta``), about
0.3 s each on this project's CPU; :func:`format_code_once` remembers the
formatted text of the last few inputs, so each is formatted once per
process, with the same result.

Every Runner logs ``mmengine.utils.collect_env()``, which imports
torchvision only to read its version, and torchvision imports
torch._dynamo: about 1.5 s of a process that needs neither (a
``tools/test.py`` run; a training process imports torch._dynamo anyway,
through ``torch.optim``, and saves torchvision's own import).
:func:`collect_env_lightly` gives the same table with torchvision's version
read from its installed distribution instead.

Importing :mod:`fqzoo.engine` applies all three.
"""
import functools
import importlib.metadata
import json
import os.path as osp
import sys
import types
from typing import Any, Callable, Optional, Tuple, Union

from mmengine._strategy import base as mmengine_strategy
from mmengine.config import config as mmengine_config
from mmengine.runner import runner as mmengine_runner
from mmengine.runner.checkpoint import CheckpointLoader
from mmengine.utils.dl_utils import collect_env
from yapf.yapflib import yapf_api

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


_YAPF_FORMAT_CODE = yapf_api.FormatCode


@functools.lru_cache(maxsize=8)
def _format_code(text: str, style: Any, options: Tuple) -> Tuple[str, bool]:
    if isinstance(style, tuple):
        style = dict(style)
    return _YAPF_FORMAT_CODE(text, style_config=style, **dict(options))


def format_code_once(text: str, style_config: Any = None,
                     **options) -> Tuple[str, bool]:
    """yapf's ``FormatCode(text, style_config, **options)``, computed once
    for each input (MMEngine's calls: a style dict, ``verify``)."""
    style = (tuple(sorted(style_config.items()))
             if isinstance(style_config, dict) else style_config)
    return _format_code(text, style, tuple(sorted(options.items())))


format_code_once.yapf_format_code = _YAPF_FORMAT_CODE
mmengine_config.FormatCode = format_code_once


def collect_env_lightly() -> dict:
    """MMEngine's ``collect_env()`` without importing torchvision when it is
    not imported yet: its ``TorchVision`` entry is then the version of the
    installed distribution (``0.29.1``, where ``torchvision.__version__``
    adds the build's local tag, ``+cu130``)."""
    if 'torchvision' in sys.modules:
        return collect_env()
    try:
        version = importlib.metadata.version('torchvision')
    except importlib.metadata.PackageNotFoundError:
        return collect_env()
    stand_in = types.ModuleType('torchvision')
    stand_in.__version__ = version
    sys.modules['torchvision'] = stand_in
    try:
        return collect_env()
    finally:
        if sys.modules.get('torchvision') is stand_in:
            del sys.modules['torchvision']


mmengine_runner.collect_env = collect_env_lightly
mmengine_strategy.collect_env = collect_env_lightly
