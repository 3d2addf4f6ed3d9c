"""The fqzoo model a converted state dict is for: built from the
converter's model config (on the meta device to check keys and shapes
without memory, on the CPU only for the initial values of buffers a
release has no counterpart of)."""
import copy
from typing import Callable, Dict, List, Mapping, Optional, Tuple, Union

import torch
from mmengine.registry import init_default_scope
from torch import Tensor, nn

from fqzoo.registry import GENERATORS, MODELS


def build_model(model_cfg: dict,
                device: Union[str, torch.device] = 'meta') -> nn.Module:
    """The tokenizer (MODELS) or generator (GENERATORS) of ``model_cfg``,
    built on ``device``."""
    init_default_scope('fqzoo')
    cfg = copy.deepcopy(dict(model_cfg))
    registry = GENERATORS if GENERATORS.get(cfg.get('type')) else MODELS
    with torch.device(device):
        return registry.build(cfg)


def check_state(state: Mapping[str, Tensor], model: nn.Module,
                layout: str,
                released: Optional[Callable[[str], str]] = None
                ) -> List[str]:
    """Check converted keys and shapes against ``model``; returns the
    model's buffers ``state`` lacks.

    Args:
        state (Mapping): converted keys -> tensors.
        model (nn.Module): the fqzoo model (on any device).
        layout (str): the released layout, named in messages.
        released (Callable, optional): fqzoo key -> released key (a key
            table's ``to_released``), so messages name both.

    Raises:
        KeyError: a converted key the model does not have, or a parameter
            the state dict lacks (the first named, the count given).
        ValueError: a shape that differs (key and both shapes named).
    """
    def name(key: str) -> str:
        return f'"{released(key)}" (fqzoo "{key}")' if released \
            else f'"{key}"'

    own = model.state_dict()
    extra = [k for k in state if k not in own]
    if extra:
        raise KeyError(f'Unexpected key {name(extra[0])}: not in the fqzoo '
                       f'model of the {layout} layout ({len(extra)} such '
                       f'keys: {extra[:6]})')
    for key, value in state.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise ValueError(f'{name(key)} has shape {tuple(value.shape)}, '
                             f'the fqzoo model of the {layout} layout '
                             f'expects {tuple(own[key].shape)}')
    params = [param for param, _ in model.named_parameters()]
    missing = [k for k in params if k not in state]
    if missing:
        raise KeyError(f'Missing key {name(missing[0])} of the {layout} '
                       f'layout ({len(missing)} missing: {missing[:6]})')
    return [k for k in own if k not in state]


def complete_state(state: Mapping[str, Tensor], model_cfg: dict,
                   layout: str) -> Tuple[Dict[str, Tensor], List[str]]:
    """``state`` checked against the model of ``model_cfg``, with the
    initial values of the buffers it lacks (usage statistics), and their
    names."""
    missing = check_state(state, build_model(model_cfg), layout)
    out = dict(state)
    if missing:
        own = build_model(model_cfg, 'cpu').state_dict()
        out.update({k: own[k] for k in missing})
    return out, missing
