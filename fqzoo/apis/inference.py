"""Build a tokenizer from a config (and checkpoint) for inference."""
import copy
from pathlib import Path
from typing import Optional, Union

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from fqzoo.registry import GENERATORS, MODELS
from fqzoo.utils.checkpoint import load_model_weights

TRAINING_ONLY = ('discriminator', 'perceptual_loss')


def _as_config(config: Union[str, Path, Config, dict]) -> Config:
    if isinstance(config, (str, Path)):
        return Config.fromfile(str(config))
    if isinstance(config, dict) and not isinstance(config, Config):
        return Config(config)
    return config


def init_tokenizer(config: Union[str, Path, Config, dict],
                   checkpoint: Optional[Union[str, Path]] = None,
                   device: Union[str, torch.device] = 'cpu'):
    """The user-facing tokenizer: ``encode``, ``decode``, ``reconstruct``.

    Args:
        config (str | Path | Config | dict): a config file or object with a
            ``model`` entry.
        checkpoint (str | Path, optional): fqzoo checkpoint to load (safely:
            tensors and plain values only). Defaults to None (random init).
        device (str | torch.device): Defaults to 'cpu'.

    The training-only parts (``discriminator``, ``perceptual_loss``) are
    not built and their weights in ``checkpoint`` are ignored, so inference
    needs neither their weight files nor their memory.

    Returns:
        ImageTokenizer: in eval mode on ``device``. Images are float in
        [-1, 1], NCHW; ``encode`` returns ``LongTensor[B, G, h, w]``.

    Example:
        >>> tok = init_tokenizer('configs/quickstart/fq2_effnet_tiny_photos.py')
        >>> idx = tok.encode(torch.zeros(1, 3, 32, 32))
    """
    config = _as_config(config)
    init_default_scope(config.get('default_scope', 'fqzoo'))
    model_cfg = copy.deepcopy(config.model)
    model_cfg.update({part: None for part in TRAINING_ONLY})
    model = MODELS.build(model_cfg)
    if checkpoint is not None:
        load_model_weights(model, checkpoint,
                           ignore_prefixes=[f'{part}.' for part in TRAINING_ONLY])
    return model.to(device).eval()


def init_generator(config: Union[str, Path, Config, dict],
                   checkpoint: Optional[Union[str, Path]] = None,
                   device: Union[str, torch.device] = 'cpu'):
    """The user-facing token generator: ``logits`` and ``generate``.

    Args:
        config (str | Path | Config | dict): a config file or object whose
            ``model`` is a GENERATORS type (``AutoregressiveGenerator``).
        checkpoint (str | Path, optional): fqzoo checkpoint (or one written
            by ``tools/convert/llamagen_gpt.py`` / ``official_far.py``),
            loaded safely. Defaults to None (random init).
        device (str | torch.device): Defaults to 'cpu'.

    Returns:
        AutoregressiveGenerator: in eval mode on ``device``;
        ``gen.generate(labels)`` returns ``LongTensor[B, G, h, w]`` for
        ``tok.decode``.

    Example:
        The FAR that ships with fqzoo (``get_model('fqzoo-fmnist-far')``
        loads the same by name, docs/demo.md) and its tokenizer, from the
        repository root:

        >>> gen = init_generator(
        ...     'configs/shipped/fmnist_far.py',
        ...     'fqzoo/zoo_assets/fqzoo-fmnist-far/'
        ...     'fqzoo-fmnist-far-4ca06088.safetensors')
        >>> idx = gen.generate(torch.tensor([1]), cfg_scale=2.0)
        >>> idx.shape
        torch.Size([1, 2, 8, 8])
        >>> tok = init_tokenizer(
        ...     'configs/shipped/fmnist_fq2.py',
        ...     'fqzoo/zoo_assets/fqzoo-fmnist-fq2/'
        ...     'fqzoo-fmnist-fq2-3314fd43.safetensors')
        >>> tok.decode(idx).shape  # a trouser, in [-1, 1]
        torch.Size([1, 3, 32, 32])
    """
    config = _as_config(config)
    init_default_scope(config.get('default_scope', 'fqzoo'))
    model = GENERATORS.build(copy.deepcopy(config.model))
    if checkpoint is not None:
        load_model_weights(model, checkpoint)
    return model.to(device).eval()
