"""Optimizer wrappers for GAN tokenizers: one per parameter group."""
from typing import Dict

from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from torch import nn

from fqzoo.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TokenizerOptimWrapperConstructor:
    """Builds ``OptimWrapperDict(autoencoder=..., discriminator=...)``.

    ``discriminator`` optimizes ``model.discriminator``; ``autoencoder``
    optimizes every other trainable parameter. A model without a
    discriminator gets only ``autoencoder``.

    Args:
        optim_wrapper_cfg (dict): ``dict(autoencoder=dict(optimizer=...),
            discriminator=dict(optimizer=...))``.
        paramwise_cfg (dict, optional): not supported; must be None.
    """

    def __init__(self, optim_wrapper_cfg: Dict[str, dict],
                 paramwise_cfg=None) -> None:
        unknown = set(optim_wrapper_cfg) - {'autoencoder', 'discriminator'}
        if unknown or 'autoencoder' not in optim_wrapper_cfg:
            raise KeyError('optim_wrapper needs an "autoencoder" entry and '
                           'may have a "discriminator" entry; got '
                           f'{sorted(optim_wrapper_cfg)}')
        if paramwise_cfg is not None:
            raise ValueError('paramwise_cfg is not supported here; set it '
                             'inside each entry')
        self.optim_wrapper_cfg = optim_wrapper_cfg

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        if is_model_wrapper(model):
            model = model.module
        disc = getattr(model, 'discriminator', None)
        ae = nn.ModuleDict({name: child for name, child in model.named_children()
                            if name != 'discriminator'})
        wrappers = {'autoencoder': self._build('autoencoder', ae)}
        if disc is not None:
            if 'discriminator' not in self.optim_wrapper_cfg:
                raise KeyError('the model has a discriminator: optim_wrapper '
                               'needs a "discriminator" entry')
            wrappers['discriminator'] = self._build('discriminator', disc)
        return OptimWrapperDict(**wrappers)

    def _build(self, name: str, module: nn.Module):
        cfg = dict(self.optim_wrapper_cfg[name])
        paramwise = cfg.pop('paramwise_cfg', None)
        return DefaultOptimWrapperConstructor(cfg, paramwise)(module)
