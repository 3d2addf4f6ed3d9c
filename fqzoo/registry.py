"""fqzoo's registries: children of MMEngine's root registries.

``locations=`` makes ``type='X'`` resolve without the caller importing the
module that registers ``X``. Building an unknown type fails with the list of
names the registry (and its parents) knows; an argument the component does
not take fails with the list of those it does. Both are refusals of the
user's input (:class:`~fqzoo.errors.InputKeyError`, still a ``KeyError``;
:class:`~fqzoo.errors.InputTypeError`, still a ``TypeError``), which the
tools print as ``error: ...``.
"""
import inspect
from typing import Any, Optional

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import (
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
)
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import STRATEGIES as MMENGINE_STRATEGIES
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import Registry, build_from_cfg, build_model_from_cfg

from fqzoo.errors import InputKeyError, InputTypeError


def known_names(registry: Registry) -> list:
    """All names resolvable from ``registry``: its own and its parents'."""
    registry.import_from_location()
    names = set()
    while registry is not None:
        names.update(registry.module_dict)
        registry = registry.parent
    return sorted(names)


def _check_type(cfg: Any, registry: Registry) -> None:
    obj_type = cfg.get('type') if isinstance(cfg, dict) else None
    if isinstance(obj_type, str) and registry.get(obj_type) is None:
        raise InputKeyError(f'Unknown {registry.name} type "{obj_type}". '
                            f'Known {registry.name} types: '
                            f'{", ".join(known_names(registry))}')


def _accepted_arguments(obj: Any) -> Optional[list]:
    """Keyword arguments ``obj(...)`` accepts; None when it takes any
    (``**kwargs``) or its signature cannot be read."""
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _check_arguments(cfg: Any, registry: Registry,
                     default_args: Optional[dict]) -> None:
    obj_type = cfg.get('type') if isinstance(cfg, dict) else None
    obj = registry.get(obj_type) if isinstance(obj_type, str) else obj_type
    if not callable(obj):
        return
    accepted = _accepted_arguments(obj)
    if accepted is None:
        return
    given = set(cfg) | set(default_args or {})
    unknown = sorted(given - set(accepted) - {'type', '_scope_'})
    if unknown:
        name = getattr(obj, '__name__', repr(obj))
        raise InputTypeError(f'{name} got unknown argument(s) '
                             f'{", ".join(unknown)}. Accepted arguments: '
                             f'{", ".join(accepted)}')


def build_component(cfg: Any, registry: Registry,
                    default_args: Optional[dict] = None) -> Any:
    """``build_from_cfg`` that names the known types on an unknown one and
    the accepted arguments on an unknown argument."""
    _check_type(cfg, registry)
    _check_arguments(cfg, registry, default_args)
    return build_from_cfg(cfg, registry, default_args)


def build_module(cfg: Any, registry: Registry,
                 default_args: Optional[dict] = None) -> Any:
    """``build_model_from_cfg`` (lists become ``nn.Sequential``) with the
    same unknown-type and unknown-argument messages as
    :func:`build_component`."""
    if not isinstance(cfg, list):
        _check_type(cfg, registry)
        _check_arguments(cfg, registry, default_args)
    return build_model_from_cfg(cfg, registry, default_args)


MODELS = Registry('model', parent=MMENGINE_MODELS, build_func=build_module,
                  locations=['fqzoo.models'])
MODEL_WRAPPERS = Registry('model_wrapper', parent=MMENGINE_MODEL_WRAPPERS,
                          locations=['fqzoo.models'])
# Registries users look components up by kind in. Roots of their own (scope
# 'fqzoo'), so the Runner's default scope 'fqzoo' resolves to them and not to
# MODELS; a component that nests a plain module builds it from MODELS.
QUANTIZERS = Registry('quantizer', scope='fqzoo', build_func=build_module,
                      locations=['fqzoo.models.quantizers'])
TEACHERS = Registry('teacher', scope='fqzoo', build_func=build_module,
                    locations=['fqzoo.models.teachers'])
REGULARIZERS = Registry('regularizer', scope='fqzoo', build_func=build_module,
                        locations=['fqzoo.models.regularizers'])
GENERATORS = Registry('generator', scope='fqzoo', build_func=build_module,
                      locations=['fqzoo.models.generators'])

DATASETS = Registry('dataset', parent=MMENGINE_DATASETS,
                    build_func=build_component, locations=['fqzoo.datasets'])
DATA_SAMPLERS = Registry('data sampler', parent=MMENGINE_DATA_SAMPLERS,
                         locations=['fqzoo.datasets'])
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS,
                      build_func=build_component,
                      locations=['fqzoo.datasets.transforms'])
METRICS = Registry('metric', parent=MMENGINE_METRICS,
                   build_func=build_component,
                   locations=['fqzoo.evaluation'])
EVALUATOR = Registry('evaluator', parent=MMENGINE_EVALUATOR,
                     locations=['fqzoo.evaluation'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, build_func=build_component,
                 locations=['fqzoo.engine'])
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, locations=['fqzoo.engine'])
RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS,
                   locations=['fqzoo.engine'])
# FlexibleRunner's strategies (FSDP) and the functions their configs name
# (FSDP auto-wrap policies).
STRATEGIES = Registry('strategy', parent=MMENGINE_STRATEGIES,
                      locations=['fqzoo.engine'])
FUNCTIONS = Registry('function', parent=MMENGINE_FUNCTIONS,
                     locations=['fqzoo.engine'])
OPTIMIZERS = Registry('optimizer', parent=MMENGINE_OPTIMIZERS,
                      locations=['fqzoo.engine'])
OPTIM_WRAPPERS = Registry('optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS,
                          locations=['fqzoo.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor', parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    locations=['fqzoo.engine'])
PARAM_SCHEDULERS = Registry('parameter scheduler',
                            parent=MMENGINE_PARAM_SCHEDULERS,
                            locations=['fqzoo.engine'])
LOG_PROCESSORS = Registry('log_processor', parent=MMENGINE_LOG_PROCESSORS,
                          locations=['fqzoo.engine'])
VISBACKENDS = Registry('vis_backend', parent=MMENGINE_VISBACKENDS,
                       locations=['fqzoo.visualization'])
VISUALIZERS = Registry('visualizer', parent=MMENGINE_VISUALIZERS,
                       locations=['fqzoo.visualization'])
