"""The model zoo: released and fqzoo-trained models by name.

``model-index.yml`` (OpenMMLab's model-index format) imports one
``metafile.yml`` per config family; each model there has a ``Name``, a
``Config``, ``Metadata`` (``Parameters``, ``Codebooks``, ``Token Grid``,
``Downsample``), the paper's ``Results`` and ``Weights``: a Hugging Face Hub
reference (``repo_id``, ``filename``, ``revision``, ``sha256``), a file
shipped in the repository (``path``, ``sha256``) or ``null`` where nothing
was released (its ``Note`` says so). :func:`get_model` builds
the config, fetches the file through ``huggingface_hub`` (its cache,
revision pinning and offline mode) or takes a local path, checks the
file's sha256 against the index, converts a released layout on the fly
(:func:`fqzoo.converters.detect_and_convert`) and returns the model in eval
mode. docs/zoo.md walks through it end to end.

Example:
    >>> from fqzoo.apis import get_model, list_models
    >>> list_models('llamagen_gpt_b*')
    ['llamagen_gpt_b_c2i_256', 'llamagen_gpt_b_c2i_384']
    >>> gen = get_model('llamagen_gpt_b_c2i_256')  # online, or cached
"""
import difflib
import fnmatch
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import yaml
from mmengine.config import Config
from torch import nn

from fqzoo.errors import (
    InputError,
    InputFileNotFoundError,
    InputKeyError,
)
from fqzoo.registry import GENERATORS
from fqzoo.utils.checkpoint import load_state_dict_checked
from fqzoo.utils.files import file_sha256

from .inference import TRAINING_ONLY, init_generator, init_tokenizer

REPO = Path(__file__).resolve().parents[2]
DEFAULT_INDEX = REPO / 'model-index.yml'
INDEX_ENV = 'FQZOO_MODEL_INDEX'
_TRUE = ('1', 'on', 'true', 'yes')


class WeightsUnavailableError(InputFileNotFoundError):
    """A model's weights are neither given, cached nor downloadable."""


class HashMismatchError(InputError):
    """A weights file is not the one the model index names."""


@dataclass(frozen=True)
class ModelInfo:
    """One model of the index.

    Attributes:
        name (str): its ``Name``.
        collection (str): its ``In Collection``.
        config (Path): its config file (absolute).
        metadata (dict): its ``Metadata``.
        results (list): its ``Results`` (the paper's numbers).
        weights (dict | None): ``repo_id``, ``filename``, ``revision``,
            ``sha256`` (a Hub file), or ``path`` and ``sha256`` (a file
            shipped in the repository); None where nothing was released.
        note (str | None): why there are no weights, or what to know.
        converted_from (dict | None): ``Weights`` and ``Code`` of the
            third-party release the weights convert from.
        metafile (Path): the metafile that lists it.
    """
    name: str
    collection: str
    config: Path
    metadata: Dict[str, Any] = field(default_factory=dict)
    results: List[dict] = field(default_factory=list)
    weights: Optional[Dict[str, Any]] = None
    note: Optional[str] = None
    converted_from: Optional[Dict[str, str]] = None
    metafile: Optional[Path] = None


def index_path(index: Union[None, str, Path] = None) -> Path:
    """``index``, else ``$FQZOO_MODEL_INDEX``, else the repository's
    ``model-index.yml``."""
    return Path(index or os.environ.get(INDEX_ENV) or DEFAULT_INDEX)


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f'Model index file not found: {path}')
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f'{path}: expected a mapping at the top, got '
                         f'{type(data).__name__}')
    return data


def _model_info(entry: dict, metafile: Path, root: Path) -> ModelInfo:
    for key in ('Name', 'In Collection', 'Config', 'Weights'):
        if key not in entry:
            raise KeyError(f'{metafile}: model {entry.get("Name", "?")!r} '
                           f'has no {key!r}')
    weights = entry['Weights']
    if weights is not None:
        missing = [k for k in ('repo_id', 'filename') if not weights.get(k)]
        if missing and not weights.get('path'):
            raise KeyError(f'{metafile}: model {entry["Name"]!r}: Weights '
                           f'has no {missing[0]!r} (a Hub reference: '
                           'repo_id, filename, revision, sha256; or a path '
                           'in the repository)')
        weights = dict(dict(revision=None, sha256=None), **weights)
        if weights.get('path'):
            weights['path'] = root / weights['path']
    elif not entry.get('Note'):
        raise KeyError(f'{metafile}: model {entry["Name"]!r} has no weights '
                       'and no Note saying why')
    return ModelInfo(name=entry['Name'], collection=entry['In Collection'],
                     config=root / entry['Config'],
                     metadata=dict(entry.get('Metadata') or {}),
                     results=list(entry.get('Results') or []),
                     weights=weights, note=entry.get('Note'),
                     converted_from=entry.get('Converted From'),
                     metafile=metafile)


def load_index(index: Union[None, str, Path] = None) -> Dict[str, ModelInfo]:
    """Every model of the index, by name.

    Args:
        index (str | Path, optional): the root ``model-index.yml``; its
            ``Import`` list and each model's ``Config`` are relative to its
            folder. Defaults to :func:`index_path`.

    Raises:
        KeyError: a model without ``Name``, ``In Collection``, ``Config`` or
            ``Weights`` (or ``null`` weights without a ``Note``), or two
            models of one name.
    """
    root_file = index_path(index)
    root = root_file.parent
    models: Dict[str, ModelInfo] = {}
    for name in _read_yaml(root_file).get('Import') or []:
        metafile = root / name
        for entry in _read_yaml(metafile).get('Models') or []:
            info = _model_info(entry, metafile, root)
            if info.name in models:
                raise KeyError(f'Model {info.name!r} is in both '
                               f'{models[info.name].metafile} and {metafile}')
            models[info.name] = info
    return models


def list_models(pattern: str = '*',
                index: Union[None, str, Path] = None) -> List[str]:
    """Names of the index's models matching the shell-style ``pattern``
    (``fnmatch``, case-insensitive), sorted.

    Example:
        >>> list_models('fqgan_dual*')
        ['fqgan_dual_ds16', 'fqgan_dual_ds8']
    """
    return sorted(name for name in load_index(index)
                  if fnmatch.fnmatchcase(name.lower(), pattern.lower()))


def model_info(name: str, index: Union[None, str, Path] = None) -> ModelInfo:
    """The index entry of ``name``.

    Raises:
        KeyError: no such model (the message lists the closest names).
    """
    models = load_index(index)
    if name not in models:
        close = difflib.get_close_matches(name, list(models), n=5)
        hint = f'; did you mean {close}?' if close else ''
        raise InputKeyError(f'No model named {name!r} in '
                            f'{index_path(index)}{hint} (list_models() '
                            f'gives all {len(models)} names)')
    return models[name]


def _env_true(name: str) -> bool:
    return os.environ.get(name, '').strip().lower() in _TRUE


def hub_file(info: ModelInfo, revision: Optional[str] = None, *,
             cache_dir: Union[None, str, Path] = None,
             local_files_only: Optional[bool] = None) -> Path:
    """The released weights file of ``info`` through
    ``huggingface_hub.hf_hub_download``: from the hub's cache when it is
    there, else downloaded into it.

    Args:
        info (ModelInfo): the model; its ``weights`` must not be None.
        revision (str, optional): branch, tag or commit. Defaults to the
            index's revision, else ``main``.
        cache_dir (str | Path, optional): Defaults to ``$HF_HUB_CACHE`` as
            set now, else the hub's default.
        local_files_only (bool, optional): never go online. Defaults to
            ``$HF_HUB_OFFLINE`` as set now, or the hub's offline mode.

    Raises:
        WeightsUnavailableError: not cached and not downloadable; the
            message names the repo, file and revision and says how to pass
            a local file instead.
    """
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError
    weights = info.weights
    revision = revision or weights['revision']
    if cache_dir is None:
        cache_dir = os.environ.get('HF_HUB_CACHE') or None
    if local_files_only is None:
        local_files_only = _env_true('HF_HUB_OFFLINE') or bool(
            constants.HF_HUB_OFFLINE)
    try:
        return Path(hf_hub_download(
            weights['repo_id'], weights['filename'], revision=revision,
            cache_dir=cache_dir, local_files_only=local_files_only))
    # OSError: the hub's HTTP, offline, not-cached, missing repo / revision
    # errors; ValueError: an invalid repo id or revision
    except (OSError, EntryNotFoundError, ValueError) as err:
        where = 'in the local Hugging Face cache (offline mode)' \
            if local_files_only else 'in the cache or on the Hub'
        raise WeightsUnavailableError(
            f'{info.name}: the weights file {weights["filename"]} of the '
            f'Hugging Face Hub repo {weights["repo_id"]} (revision '
            f'{revision or "main"}) is not {where}: {type(err).__name__}: '
            f'{err}. Download it where the network is (huggingface-cli '
            f'download {weights["repo_id"]} {weights["filename"]}, then '
            'copy the cache or the file) and pass the file: '
            f"get_model('{info.name}', pretrained='/path/to/"
            f"{weights['filename']}')") from None


def check_sha256(path: Union[str, Path], expected: Optional[str],
                 name: str) -> str:
    """The sha256 of ``path``; raises when ``expected`` is given and
    differs.

    Raises:
        HashMismatchError: naming the file, the expected and the found hash.
    """
    found = file_sha256(path)
    if expected and found != expected.lower():
        raise HashMismatchError(
            f'{path} is not the weights file of {name}: sha256 expected '
            f'{expected.lower()} (model index), found {found}. A damaged '
            'download (delete it from the cache and fetch again) or '
            'another file (pass check_hash=False to load it anyway)')
    return found


def image_sizes(info: ModelInfo) -> List[int]:
    """The image size the index gives a model (none: ``[]``)."""
    size = info.metadata.get('Image Size')
    return [int(size)] if size else []


def _is_generator(config: Config) -> bool:
    kind = config.model.get('type')
    return isinstance(kind, str) and GENERATORS.get(kind) is not None


def _layout_from_index(info: ModelInfo, config: Config) -> None:
    """Set a generator config's token grid and codebook sizes from the
    index's ``Token Grid`` and ``Codebooks`` (instead of its ``tokens``
    source: a codes folder or a tokenizer config)."""
    grid = info.metadata.get('Token Grid')
    sizes = info.metadata.get('Codebooks')
    if grid is None or sizes is None:
        raise KeyError(f'{info.metafile}: generator {info.name!r} needs '
                       'Metadata "Token Grid" and "Codebooks"')
    model = config.model
    for key, value in (('grid_size', list(grid)),
                       ('codebook_sizes', list(sizes))):
        if model.get(key) is not None and list(model[key]) != value:
            raise ValueError(f'{info.name}: {info.config} sets {key}='
                             f'{list(model[key])}, the model index '
                             f'{value}')
        model[key] = value
    model['tokens'] = None


def build_config(info: ModelInfo) -> Config:
    """The config of ``info``, a generator's token layout from the index
    (so it builds without its codes folder or tokenizer config)."""
    config = Config.fromfile(str(info.config))
    if _is_generator(config):
        _layout_from_index(info, config)
    return config


def build_model(info: ModelInfo, device: Union[str, torch.device] = 'cpu',
                config: Optional[Config] = None) -> nn.Module:
    """The model of ``info`` with random weights (tokenizers without their
    training-only parts, as :func:`init_tokenizer` builds them), from
    ``config`` when given (else :func:`build_config`)."""
    config = config if config is not None else build_config(info)
    if _is_generator(config):
        return init_generator(config, device=device)
    return init_tokenizer(config, device=device)


def _fits(model: nn.Module, state: Dict[str, Any]) -> bool:
    """Whether ``state`` is in fqzoo's layout for ``model``: every
    parameter under its own name (``module.`` prefixes aside)."""
    names = {k[len('module.'):] if k.startswith('module.') else k
             for k in state}
    return all(name in names for name, _ in model.named_parameters())


def conversion_options(model: nn.Module, config: Config) -> Dict[str, Any]:
    """What the converters cannot read from the released tensors, from the
    config the model was built with: the FQGAN config to map onto (its
    regularizers' order), the GPTs' attention heads and token grid."""
    options: Dict[str, Any] = dict(config=config)
    heads = (config.model.get('backbone') or {}).get('num_heads')
    if heads is not None:
        options['num_heads'] = int(heads)
    if hasattr(model, 'grid_size'):
        options['grid_size'] = int(model.grid_size[0])
    return options


def convert_to_fqzoo(state: Dict[str, Any], model: nn.Module,
                     source: Union[str, Path],
                     config: Optional[Config] = None) -> Dict[str, Any]:
    """``state`` in fqzoo's layout for ``model``: as it is when it already
    is, else converted from the released layout it is detected to be
    (:func:`fqzoo.converters.detect_and_convert`, told what ``config``
    knows). Buffers the release has no counterpart of (usage statistics)
    keep the model's values.

    Raises:
        KeyError, ValueError: neither layout (``source`` named, with the
            converters' reason).
    """
    if _fits(model, state):
        return state
    from fqzoo.converters import detect_and_convert
    options = conversion_options(model, config) if config is not None \
        else {}
    try:
        converted = detect_and_convert(state, **options).state_dict
    except (KeyError, ValueError) as err:
        raise type(err)(f'{source}: neither fqzoo weights of '
                        f'{type(model).__name__} nor a released layout: '
                        f'{err.args[0] if err.args else err}') from None
    params = {name for name, _ in model.named_parameters()}
    own = model.state_dict()
    return dict({k: v for k, v in own.items()
                 if k not in converted and k not in params}, **converted)


def recorded_layout(checkpoint: Any, path: Union[str, Path]
                    ) -> Optional[dict]:
    """The token layout a weights file records: ``meta['token_layout']`` of
    a checkpoint, the ``token_layout`` metadata of a safetensors file; None
    for files that record none (the released ones)."""
    from fqzoo.utils.checkpoint import is_safetensors, safetensors_metadata
    from fqzoo.utils.token_layout import KEY
    if is_safetensors(path):
        text = safetensors_metadata(path).get(KEY)
        return json.loads(text) if text else None
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    layout = meta.get(KEY) if isinstance(meta, dict) else None
    return layout if isinstance(layout, dict) else None


def built_layout(model: nn.Module, image_sizes: Sequence[int] = ()) -> dict:
    """The token layout of a built tokenizer (grids at ``image_sizes``) or
    generator."""
    from fqzoo.utils.token_layout import generator_layout, tokenizer_layout
    if hasattr(model, 'generate'):
        return generator_layout(model)
    return tokenizer_layout(model, image_sizes=image_sizes)


def load_weights(model: nn.Module, path: Union[str, Path],
                 config: Optional[Config] = None,
                 image_sizes: Sequence[int] = ()) -> nn.Module:
    """Load the weights file ``path`` (fqzoo checkpoint, published
    safetensors or a released layout, converted with what ``config``, the
    model's config, knows) into ``model``, every key and shape checked;
    returns ``model``.

    Raises:
        ValueError: the file records a token layout (codebooks, sub-tokens,
            downsample factor, grid at one of ``image_sizes``) other than
            the model's: a generator's grid, say, which no tensor shape
            shows.
        KeyError: keys or shapes that do not fit.
    """
    from fqzoo.converters import load_checkpoint_file, select_weights
    from fqzoo.utils.token_layout import check_same_layout
    checkpoint = load_checkpoint_file(path)
    check_same_layout(recorded_layout(checkpoint, path),
                      built_layout(model, image_sizes),
                      first_name=str(path), second_name='the model of its '
                      'config' if config is None else
                      f'the model of {config.filename or "its config"}')
    state, _ = select_weights(checkpoint, path)
    state = convert_to_fqzoo(state, model, path, config)
    ignore = () if hasattr(model, 'generate') else tuple(
        f'{part}.' for part in TRAINING_ONLY)
    load_state_dict_checked(model, state, path, ignore_prefixes=ignore)
    return model


def resolve_weights(info: ModelInfo,
                    pretrained: Union[bool, str, Path] = True,
                    revision: Optional[str] = None, *,
                    check_hash: bool = True,
                    cache_dir: Union[None, str, Path] = None,
                    local_files_only: Optional[bool] = None
                    ) -> Optional[Path]:
    """The weights file :func:`get_model` loads (None for
    ``pretrained=False``), its sha256 checked against the index.

    Raises:
        WeightsUnavailableError: ``pretrained=True`` for a model without
            released weights, or a file neither cached nor downloadable.
        FileNotFoundError: ``pretrained`` names a missing file.
        HashMismatchError: the file is not the one the index names.
    """
    if pretrained is False:
        return None
    if pretrained is True:
        if info.weights is None:
            raise WeightsUnavailableError(
                f'{info.name} has no released weights ({info.note}). Train '
                f'it with {info.config} and pass the checkpoint: '
                f"get_model('{info.name}', pretrained='/path/to/ckpt'), or "
                'pretrained=False for random weights')
        if info.weights.get('path'):
            path = info.weights['path']
            if not path.is_file():
                raise WeightsUnavailableError(
                    f'{info.name}: its shipped weights file {path} is '
                    'missing (a checkout without it?): pass another copy '
                    f"as get_model('{info.name}', pretrained='/path/to/"
                    f"{path.name}')")
        else:
            path = hub_file(info, revision, cache_dir=cache_dir,
                            local_files_only=local_files_only)
    else:
        path = Path(pretrained)
        if not path.is_file():
            raise InputFileNotFoundError(f'{info.name}: weights file not '
                                         f'found: {path}')
    expected = (info.weights or {}).get('sha256')
    pinned = revision in (None, (info.weights or {}).get('revision'))
    if check_hash and expected and pinned:
        check_sha256(path, expected, info.name)
    return path


def get_model(name: str, pretrained: Union[bool, str, Path] = True,
              device: Union[str, torch.device] = 'cpu',
              revision: Optional[str] = None, *,
              check_hash: bool = True,
              cache_dir: Union[None, str, Path] = None,
              local_files_only: Optional[bool] = None,
              index: Union[None, str, Path] = None) -> nn.Module:
    """A model of the zoo by name, ready in eval mode.

    Args:
        name (str): a name of :func:`list_models`.
        pretrained (bool | str | Path): True: the released weights through
            the Hugging Face Hub cache (downloaded when online); a path: that
            file (fqzoo checkpoint, ``.safetensors`` or the released file);
            False: random weights. Defaults to True.
        device (str | torch.device): Defaults to 'cpu'.
        revision (str, optional): Hub branch, tag or commit. Defaults to
            the index's pin, else ``main``.
        check_hash (bool): compare the file's sha256 with the index's (when
            it has one, for the index's revision). Defaults to True.
        cache_dir (str | Path, optional): Hub cache folder. Defaults to
            ``$HF_HUB_CACHE``, else the hub's default.
        local_files_only (bool, optional): never go online. Defaults to
            ``$HF_HUB_OFFLINE``.
        index (str | Path, optional): the model index. Defaults to
            :func:`index_path`.

    Returns:
        nn.Module: an ``ImageTokenizer`` (``encode``/``decode``) or an
        ``AutoregressiveGenerator`` (``generate``), in eval mode on
        ``device``. Released layouts are converted on the fly.

    Raises:
        KeyError: unknown name.
        WeightsUnavailableError: no weights to load (never random weights
            unless ``pretrained=False``).
        HashMismatchError: the file is not the index's.
    """
    return _load(name, pretrained, revision, check_hash, cache_dir,
                 local_files_only, index)[0].to(device).eval()


def _load(name: str, pretrained, revision, check_hash, cache_dir,
          local_files_only, index) -> tuple:
    """``(model, info, config, weights path or None)``: ``name`` built from
    its config and, where there are weights, loaded (converted on the fly),
    as :func:`get_model` and :func:`export_model` take it."""
    info = model_info(name, index)
    path = resolve_weights(info, pretrained, revision, check_hash=check_hash,
                           cache_dir=cache_dir,
                           local_files_only=local_files_only)
    config = build_config(info)
    model = build_model(info, config=config)
    if path is not None:
        load_weights(model, path, config, image_sizes(info))
    return model, info, config, path


def count_parameters(info: ModelInfo) -> int:
    """The parameters of ``info``'s model, built on the meta device (no
    memory, seconds even for 3B)."""
    with torch.device('meta'):
        model = build_model(info, device='meta')
    return sum(p.numel() for p in model.parameters())


def export_model(name: str, out_dir: Union[str, Path],
                 pretrained: Union[bool, str, Path] = True, *,
                 revision: Optional[str] = None, check_hash: bool = True,
                 cache_dir: Union[None, str, Path] = None,
                 local_files_only: Optional[bool] = None,
                 index: Union[None, str, Path] = None) -> Tuple[Path, Path]:
    """Write ``name``'s config and fqzoo-layout weights for the tools that
    take ``CONFIG CHECKPOINT`` (``tools/sample.py``,
    ``tools/extract_codes.py``, ``tools/test.py``): ``OUT/<name>.py``
    (standalone, a generator's token layout written out) and
    ``OUT/<name>.safetensors`` (its metadata: the token layout, the model
    name and the source file's sha256).

    Args:
        name (str): a model of the index.
        out_dir (str | Path): folder (created).
        pretrained, revision, check_hash, cache_dir, local_files_only,
            index: as :func:`get_model`'s.

    Returns:
        tuple[Path, Path]: the config and weights files.
    """
    from safetensors.torch import save_file

    from fqzoo.utils.token_layout import layout_meta
    model, info, config, path = _load(name, pretrained, revision, check_hash,
                                      cache_dir, local_files_only, index)
    layout = built_layout(model, image_sizes(info))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config_file, weights_file = (out_dir / f'{name}.py',
                                 out_dir / f'{name}.safetensors')
    config.dump(str(config_file))
    state = {k: v.detach().cpu().contiguous()
             for k, v in model.state_dict().items()}
    save_file(state, str(weights_file), metadata=dict(
        fqzoo_model=name, **layout_meta(layout),
        source_sha256='' if path is None else file_sha256(path)))
    return config_file, weights_file


__all__ = ['ModelInfo', 'WeightsUnavailableError', 'HashMismatchError',
           'load_index', 'list_models', 'model_info', 'get_model',
           'build_model', 'build_config', 'count_parameters', 'hub_file',
           'check_sha256', 'resolve_weights', 'load_weights',
           'convert_to_fqzoo', 'export_model', 'index_path']
