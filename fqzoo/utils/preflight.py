"""Pre-flight check: every file and folder a config needs from outside.

Pretrained components and datasets declare what they need with a classmethod
``external_requirements(args) -> List[Requirement]``, where ``args`` are
their constructor arguments (the config's values over the signature's
defaults). :func:`collect_requirements` walks a config, asks every component
it resolves in fqzoo's registries, and merges repeats (the VGG16 file that
LPIPS needs in the model and in the evaluator is one requirement with two
config keys). :func:`check_config` says which are present;
:func:`missing_message` lists all the missing ones in one message, each with
the config key that takes its path and where to get it, so a new user meets
every missing file at once instead of one run at a time.

A weight file whose path is unset counts as present when the library's
cache (torch hub, Hugging Face hub) holds it, and as downloadable when the
library's server answers; ``FQZOO_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1`` for
Hugging Face files) says the machine is offline without asking.

Example:
    >>> from mmengine.config import Config
    >>> checks = check_config(Config.fromfile('configs/fq/fq2_dino_clip.py'))
    >>> print(missing_message(checks, 'configs/fq/fq2_dino_clip.py'))
"""
import functools
import inspect
import os
import os.path as osp
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence
from urllib.parse import urlsplit

#: Check statuses that let a run start.
READY = ('found', 'cached', 'download')


@dataclass(frozen=True)
class Requirement:
    """One file or folder a component needs from outside fqzoo.

    Args:
        what (str): what it is, for people (``'DINOv2 weights ...'``).
        arg (str): the component's argument that takes its local path.
        path (str, optional): the configured path (for a dataset, the folder
            it reads); None when that argument is unset and the library's
            cache or a download stands in.
        source (str): where to get it (an address, a hub repository, a
            command).
        filename (str, optional): the name ``tools/fetch_weights.py`` stores
            it under; None when it cannot be fetched that way. Defaults to
            None.
        fetch (Callable[[], str], optional): downloads it through the
            library's own hub (into the library's cache) and returns the
            local file. Defaults to None.
        cache (str, optional): the library-cache file that stands in for an
            unset ``path``, when the cache holds it. Defaults to None.
        server (str, optional): the address the library downloads from; it
            answering means a download can work. Defaults to None.
        keys (tuple[str, ...]): the full config keys taking its path, filled
            by :func:`collect_requirements`. Defaults to ().
    """

    what: str
    arg: str
    path: Optional[str]
    source: str
    filename: Optional[str] = None
    fetch: Optional[Callable[[], str]] = field(default=None, compare=False)
    cache: Optional[str] = None
    server: Optional[str] = None
    keys: tuple = ()


@dataclass(frozen=True)
class Check:
    """A requirement and its status on this machine: ``'found'`` (the
    configured path exists), ``'cached'`` (the library's cache holds it),
    ``'download'`` (unset, not cached, the library's server answers) or
    ``'missing'``."""

    requirement: Requirement
    status: str

    @property
    def ok(self) -> bool:
        """Whether the run can start as far as this requirement goes."""
        return self.status in READY


def torch_hub_file(url: str) -> Path:
    """Where ``torch.hub`` caches the file of ``url`` (torchvision and
    torch-fidelity weights): ``$TORCH_HOME/hub/checkpoints/<file name>``."""
    import torch
    return Path(torch.hub.get_dir()) / 'checkpoints' / url.rsplit('/', 1)[-1]


def download_torch_hub_file(url: str) -> str:
    """Download ``url`` into the torch hub cache with ``torch.hub``'s own
    downloader (no-op when cached); returns the cached file."""
    import torch
    path = torch_hub_file(url)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(path), progress=True)
    return str(path)


def torch_hub_requirement(what: str, arg: str, path: Optional[str],
                          url: str) -> Requirement:
    """A weight file that the library loads from ``url`` through the torch
    hub cache when ``path`` is unset."""
    cached = torch_hub_file(url)
    return Requirement(
        what=what, arg=arg, path=path,
        source=f'{url} (or put it in {cached.parent}/)',
        filename=cached.name, fetch=lambda: download_torch_hub_file(url),
        cache=str(cached) if cached.is_file() else None, server=url)


def hf_hub_cached(repo_id: str, filenames: Sequence[str]) -> Optional[str]:
    """The first of ``filenames`` of Hugging Face repository ``repo_id``
    (``'org/name'``, optionally ``'@revision'``) in the local hub cache."""
    from huggingface_hub import try_to_load_from_cache
    repo, _, revision = repo_id.partition('@')
    for filename in filenames:
        found = try_to_load_from_cache(repo, filename,
                                       revision=revision or None)
        if isinstance(found, str):
            return found
    return None


def hf_hub_server() -> str:
    """The Hugging Face endpoint the hub clients download from."""
    from huggingface_hub import constants
    return constants.ENDPOINT


def _env_flag(name: str) -> bool:
    return os.environ.get(name, '').strip().lower() in ('1', 'true', 'yes',
                                                        'on')


@functools.cache
def _server_answers(origin: str) -> bool:
    request = urllib.request.Request(origin, method='HEAD')
    try:
        urllib.request.urlopen(request, timeout=5).close()
    except urllib.error.HTTPError:
        return True  # it answered, with an error status: it is reachable
    except (OSError, ValueError):
        return False
    return True


def server_answers(url: str) -> bool:
    """Whether the server of ``url`` answers (through the environment's
    proxies). ``FQZOO_OFFLINE=1`` answers no for every server,
    ``HF_HUB_OFFLINE=1`` for the Hugging Face endpoint."""
    if _env_flag('FQZOO_OFFLINE'):
        return False
    parts = urlsplit(url)
    origin = f'{parts.scheme}://{parts.netloc}'
    if _env_flag('HF_HUB_OFFLINE') and url.startswith(hf_hub_server()):
        return False
    return _server_answers(origin)


def _component_class(type_: Any) -> Optional[type]:
    """The class a config's ``type`` names that declares external
    requirements, searched in fqzoo's registries (and their parents');
    None when there is none."""
    if isinstance(type_, type):
        return type_
    if not isinstance(type_, str):
        return None
    from fqzoo import registry
    for reg in (registry.MODELS, registry.TEACHERS, registry.REGULARIZERS,
                registry.QUANTIZERS, registry.GENERATORS, registry.DATASETS,
                registry.METRICS, registry.HOOKS):
        found = reg.get(type_)
        if hasattr(found, 'external_requirements'):
            return found
    return None


def component_args(cls: type, cfg: dict) -> Optional[dict]:
    """``cls``'s constructor arguments for config ``cfg`` (its values over
    the signature's defaults); None when they do not fit the signature
    (the build reports that)."""
    kwargs = {k: v for k, v in cfg.items() if k != 'type'}
    try:
        bound = inspect.signature(cls).bind_partial(**kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    return dict(bound.arguments)


def _walk(node: Any, key: str) -> Iterator[tuple]:
    """``(key, dict)`` for every dict with a ``type`` under ``node``."""
    if isinstance(node, dict):
        if 'type' in node:
            yield key, node
        items = node.items()
    elif isinstance(node, (list, tuple)):
        items = enumerate(node)
    else:
        return
    for name, child in items:
        yield from _walk(child, f'{key}.{name}' if key else str(name))


def _load_from(cfg: dict) -> List[Requirement]:
    path = cfg.get('load_from')
    if not path:
        return []
    return [Requirement(what='checkpoint to load', arg='load_from',
                        path=str(path), source='a checkpoint written by '
                        'tools/train.py (or converted by tools/convert/)',
                        keys=('load_from',))]


def collect_requirements(cfg: dict) -> List[Requirement]:
    """Everything ``cfg`` needs from outside, in config order, repeats
    merged (their ``keys`` joined).

    Args:
        cfg (dict): a loaded config (``mmengine.Config`` or a dict).

    Returns:
        list[Requirement]: each with the full config ``keys`` taking its
        path (``model.regularizers.1.teacher.checkpoint``).
    """
    merged: Dict[tuple, Requirement] = {}
    found = _load_from(cfg)
    for key, node in _walk(dict(cfg.items()), ''):
        cls = _component_class(node['type'])
        declare = getattr(cls, 'external_requirements', None)
        args = component_args(cls, node) if declare is not None else None
        if args is None:
            continue
        found += [replace(req, keys=(f'{key}.{req.arg}',))
                  for req in declare(args)]
    for req in found:
        ident = (req.what, req.path, req.cache, req.source)
        if ident in merged:
            old = merged[ident]
            req = replace(old, keys=old.keys + tuple(
                k for k in req.keys if k not in old.keys))
        merged[ident] = req
    return list(merged.values())


def requirement_status(req: Requirement,
                       online: Optional[bool] = None) -> str:
    """``'found'``, ``'cached'``, ``'download'`` or ``'missing'`` (see
    :class:`Check`); ``online`` None asks the requirement's server."""
    if req.path is not None:
        return 'found' if osp.exists(req.path) else 'missing'
    if req.cache is not None:
        return 'cached'
    if req.server is not None and (
            server_answers(req.server) if online is None else online):
        return 'download'
    return 'missing'


def check_config(cfg: dict, online: Optional[bool] = None) -> List[Check]:
    """Every requirement of ``cfg`` with its status on this machine.

    Args:
        cfg (dict): a loaded config.
        online (bool, optional): whether downloads can work; None asks each
            library's server (only for files neither configured nor
            cached). Defaults to None.
    """
    return [Check(req, requirement_status(req, online))
            for req in collect_requirements(cfg)]


def _describe(req: Requirement) -> List[str]:
    where = req.path if req.path is not None else (
        'not set, not in the library\'s cache, no download from here')
    return [f'    path: {where}',
            f'    config key: {", ".join(req.keys)}',
            f'    get it from: {req.source}']


def missing_message(checks: Sequence[Check], config: str) -> str:
    """One message listing every missing requirement (what, config key,
    where to get it) and the ``tools/fetch_weights.py`` command for those it
    can download."""
    missing = [c.requirement for c in checks if not c.ok]
    lines = [f'{config} needs {len(missing)} file(s) or folder(s) that are '
             'not on this machine:']
    for i, req in enumerate(missing, 1):
        lines += [f'{i}. {req.what}'] + _describe(req)
    if any(req.fetch is not None for req in missing):
        stem = osp.splitext(osp.basename(config))[0]
        lines += ['', 'The weight files download through their libraries\' '
                  'hubs on a machine with network access:',
                  f'    python tools/fetch_weights.py {config} --out DIR',
                  f'then run with DIR/{stem}_offline.py as the config (it '
                  'points every weight path into DIR).']
    lines += ['Set a path in the config or with --cfg-options KEY=PATH; '
              '`tools/train.py CONFIG --dry-run` checks again.']
    return '\n'.join(lines)


def checks_summary(checks: Sequence[Check]) -> str:
    """One line per requirement with its status, for ``--dry-run``."""
    if not checks:
        return 'The config needs nothing from outside fqzoo.'
    lines = []
    for check in checks:
        req = check.requirement
        where = {'found': req.path, 'cached': req.cache,
                 'download': f'downloads from {req.server}',
                 'missing': req.path or 'not set'}[check.status]
        lines.append(f'[{check.status:>8}] {req.what}: {where} '
                     f'({", ".join(req.keys)})')
    return '\n'.join(lines)


class MissingRequirementsError(RuntimeError):
    """Files or folders a config needs are not on this machine; the message
    lists them all."""


def ensure_requirements(cfg: dict, config: str,
                        online: Optional[bool] = None) -> List[Check]:
    """:func:`check_config`, raising one :class:`MissingRequirementsError`
    that lists everything missing.

    Args:
        cfg (dict): a loaded config.
        config (str): its file, named in the message.
        online (bool, optional): see :func:`check_config`.
    """
    checks = check_config(cfg, online)
    if not all(check.ok for check in checks):
        raise MissingRequirementsError(missing_message(checks, config))
    return checks


def dry_run(cfg: dict, config: str, online: Optional[bool] = None) -> int:
    """Print every requirement's status, and the missing message if
    something is missing; returns the exit status (0 all present, 1 not).

    Args:
        cfg (dict): a loaded config.
        config (str): its file, named in the message.
        online (bool, optional): see :func:`check_config`.
    """
    checks = check_config(cfg, online)
    print(checks_summary(checks))
    if all(check.ok for check in checks):
        return 0
    print('\n' + missing_message(checks, config))
    return 1
