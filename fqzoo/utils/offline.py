"""Weight files for an offline machine (``tools/fetch_weights.py``).

Compute nodes are often offline while a login node is not. On the machine
with network access, :func:`fetch_weights` downloads every weight file a
config needs (the :mod:`fqzoo.utils.preflight` requirements that can be
fetched) through the libraries' own hubs (timm, open_clip, torch hub for
torchvision and torch-fidelity), places them in one folder and writes
``<folder>/<config name>_offline.py``: ``_base_`` is the config, and every
config key taking one of those files points into the folder (relative to
the override file through MMEngine's ``{{fileDirname}}``, so the folder
can be copied elsewhere). Files already in the folder are not fetched again.
"""
import ast
import copy
import os
import shutil
from pathlib import Path
from pprint import pformat
from typing import Callable, Dict, List, Sequence, Tuple, Union

from mmengine.config import Config

from .preflight import Requirement, collect_requirements

#: How an override config names its own folder (MMEngine substitutes it).
FILE_DIRNAME = '{{fileDirname}}'


def _place(src: Path, dest: Path) -> None:
    """Hard-link ``src`` (a cache file, symlinks resolved) to ``dest``, or
    copy it where linking fails; ``dest`` appears complete or not at all."""
    src = src.resolve()
    partial = dest.with_name(dest.name + '.part')
    if partial.exists():
        partial.unlink()
    try:
        os.link(src, partial)
    except OSError:
        shutil.copyfile(src, partial)
    os.replace(partial, dest)


#: The suffixes a fetched weights file may keep (see fetch_requirement).
WEIGHT_SUFFIXES = ('.safetensors', '.bin', '.pt', '.pth')


def fetch_requirement(req: Requirement, out: Path,
                      log: Callable[[str], None] = print) -> Path:
    """Fetch ``req`` into ``out`` (unless already there); returns its file.

    The file keeps the suffix of what the library downloaded
    (``.safetensors`` or ``.bin``), which tells the loaders its format; a
    file of the same name with any of :data:`WEIGHT_SUFFIXES` counts as
    already there (a ``.bin`` the library fell back to, saved for a
    requirement named ``.safetensors``).
    """
    dest = out / req.filename
    for have in dict.fromkeys([dest] + [dest.with_suffix(suffix)
                                        for suffix in WEIGHT_SUFFIXES]):
        if have.is_file():
            log(f'have     {req.what}: {have}')
            return have
    log(f'fetching {req.what} from {req.source}')
    src = Path(req.fetch())
    dest = dest.with_suffix(src.suffix)
    _place(src, dest)
    log(f'saved    {dest}')
    return dest


def fetchable(requirements: Sequence[Requirement]) -> List[Requirement]:
    """The requirements ``fetch_weights`` downloads: those with a download
    function whose configured path is unset or absent."""
    return [req for req in requirements
            if req.fetch is not None and req.filename is not None
            and (req.path is None or not os.path.exists(req.path))]


def _key_parts(key: str, node: object) -> List[Union[str, int]]:
    parts: List[Union[str, int]] = []
    for part in key.split('.'):
        parts.append(int(part) if isinstance(node, list) else part)
        node = node[parts[-1]]
    return parts


def _minimal(value: object, paths: List[Tuple]) -> object:
    """The part of ``value`` an override needs to set ``paths``: dicts keep
    only the entries on a path, lists are written whole (MMEngine replaces
    lists, it does not merge them)."""
    if not isinstance(value, dict) or any(not p for p in paths):
        return value
    out = {}
    for name in dict.fromkeys(p[0] for p in paths):
        out[name] = _minimal(value[name], [p[1:] for p in paths
                                           if p[0] == name])
    return out


def override_entries(cfg: Config, settings: Dict[str, str]) -> dict:
    """Top-level entries of a config that, with ``cfg`` as ``_base_``, sets
    each dotted key of ``settings`` (``model.regularizers.1.teacher.
    checkpoint``) to its value."""
    plain = copy.deepcopy(cfg.to_dict())
    paths = []
    for key, value in settings.items():
        parts = _key_parts(key, plain)
        node = plain
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value
        paths.append(tuple(parts))
    return _minimal(plain, paths)


def write_override(config: Union[str, Path], entries: dict, path: Path,
                   note: str) -> Path:
    """Write ``entries`` as a config file whose ``_base_`` is ``config``."""
    lines = [f'# {line}' for line in note.splitlines()]
    lines.append(f'_base_ = {str(Path(config).resolve())!r}')
    for name, value in entries.items():
        indent = ' ' * (len(name) + 3)
        text = pformat(value, width=79 - len(indent), sort_dicts=False)
        ast.literal_eval(text)  # only plain values: the file must load back
        lines.append(f'{name} = ' + text.replace('\n', '\n' + indent))
    path.write_text('\n'.join(lines) + '\n')
    return path


def fetch_weights(config: Union[str, Path], out: Union[str, Path],
                  log: Callable[[str], None] = print) -> Path:
    """Fetch every weight file ``config`` needs into ``out`` and write the
    override config ``out/<config name>_offline.py``.

    Args:
        config (str | Path): the config file.
        out (str | Path): the folder; created if needed.
        log (Callable[[str], None]): progress messages. Defaults to print.

    Returns:
        Path: the override config.
    """
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cfg = Config.fromfile(str(config))
    settings = {}
    for req in fetchable(collect_requirements(cfg)):
        dest = fetch_requirement(req, out, log)
        for key in req.keys:
            settings[key] = f'{FILE_DIRNAME}/{dest.name}'
    name = Path(config).stem
    note = (f'Written by tools/fetch_weights.py: {name} with its weight '
            'files read from this folder.\nRun this config where the folder '
            'is (copy the folder anywhere; the paths follow it).')
    return write_override(config, override_entries(cfg, settings),
                          out / f'{name}_offline.py', note)
