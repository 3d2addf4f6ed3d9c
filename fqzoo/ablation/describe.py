"""A config under the ablation's budget, and the model it builds."""
import copy
import math
from typing import Optional

from mmengine.config import Config
from mmengine.registry import init_default_scope

from fqzoo.registry import MODELS

# Parts of the trained model that a tokenizer does not need at inference:
# they are not counted in ``params``.
TRAINING_ONLY = ('discriminator', 'perceptual_loss', 'regularizers')


def apply_budget(cfg: Config, *, max_iters: Optional[int] = None,
                 seed: Optional[int] = None) -> Config:
    """Set the shared training budget and the seed on ``cfg`` (in place).

    ``max_iters`` sets ``train_cfg.max_iters`` and clips what would exceed
    it: ``train_cfg.val_interval`` and the ``end`` / ``T_max`` of every
    parameter scheduler; the checkpoint hook saves the last iteration.
    ``seed`` sets ``randomness.seed``.

    Returns:
        Config: ``cfg``.
    """
    if max_iters is not None:
        cfg.train_cfg.max_iters = max_iters
        if cfg.train_cfg.get('val_interval', 0) > max_iters:
            cfg.train_cfg.val_interval = max_iters
        schedulers = cfg.get('param_scheduler') or []
        if isinstance(schedulers, dict):
            schedulers = [schedulers]
        for scheduler in schedulers:
            for key in ('end', 'T_max'):
                if scheduler.get(key, 0) > max_iters:
                    scheduler[key] = max_iters
        checkpoint = cfg.get('default_hooks', {}).get('checkpoint')
        if checkpoint is not None:
            checkpoint.save_last = True
    if seed is not None:
        # Config.setdefault stores a copy of a new dict, so assign a new one
        cfg.randomness = dict(cfg.get('randomness') or {}, seed=seed)
    return cfg


def describe_model(cfg: Config) -> dict:
    """The :class:`~.records.RunResult` fields that describe the model ``cfg.model``
    builds: ``model``, ``codebook_sizes``, ``bits_per_token``, ``grid`` and
    ``params``.

    The built model says what it is: a tokenizer has a ``quantizer`` (it is
    built without its training-only parts, :data:`TRAINING_ONLY`, so no
    teacher weights are needed); a token generator has a ``head``, its
    ``codebook_sizes`` and ``grid_size``.
    """
    init_default_scope(cfg.get('default_scope', 'fqzoo'))
    model_cfg = copy.deepcopy(cfg.model)
    for key in TRAINING_ONLY:
        model_cfg.pop(key, None)
    model = MODELS.build(model_cfg)
    if hasattr(model, 'quantizer'):
        quantizer = model.quantizer
        name = type(quantizer).__name__
        inner = cfg.model.quantizer.get('quantizer')
        if isinstance(inner, dict) and 'type' in inner:
            name = f'{name}({inner["type"]})'
        sizes = [int(quantizer.codebook_size)] * int(quantizer.num_codebooks)
        grid = ''
    else:
        name = type(model.head).__name__
        sizes = [int(v) for v in model.codebook_sizes]
        grid = 'x'.join(map(str, model.grid_size))
    return dict(model=name, codebook_sizes=sizes, grid=grid,
                bits_per_token=sum(math.log2(v) for v in sizes),
                params=sum(p.numel() for p in model.parameters()))

