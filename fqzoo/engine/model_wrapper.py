"""Distributed wrapper for GAN tokenizers with container submodules."""
from mmengine.device import get_device
from mmengine.model import MMDistributedDataParallel, MMSeparateDistributedDataParallel
from torch import nn

from fqzoo.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class TokenizerDistributedDataParallel(MMSeparateDistributedDataParallel):
    """``MMSeparateDistributedDataParallel`` that also looks inside
    ``nn.ModuleList`` / ``nn.ModuleDict`` children.

    MMEngine's wrapper puts each trainable child of the model in its own
    ``MMDistributedDataParallel`` and calls the model's own ``train_step``
    (which plain ``MMDistributedDataParallel`` does not). A ``ModuleList``
    child (``ImageTokenizer.quant_convs``, ``regularizers``) then becomes a
    DDP object that cannot be iterated or indexed; here each element of such
    a container is wrapped instead, so the model iterates it as before and
    every call goes through a DDP forward (and its gradients are reduced).

    The model's ``state_dict`` keys are the same wrapped or not (no
    ``encoder.module.`` infix), so checkpoints from distributed and
    single-process runs are interchangeable (resume, ``load_from``,
    ``init_tokenizer``).

    Args:
        module (nn.Module): the model.
        broadcast_buffers (bool): as in DDP. Defaults to False.
        find_unused_parameters (bool): as in DDP. Defaults to False.
        **kwargs: other ``MMDistributedDataParallel`` arguments
            (``device_ids`` ...).

    Example:
        >>> model_wrapper_cfg = dict(type='TokenizerDistributedDataParallel')
    """

    def __init__(self, module: nn.Module, broadcast_buffers: bool = False,
                 find_unused_parameters: bool = False, **kwargs) -> None:
        nn.Module.__init__(self)
        self.module = module
        self._wrap_children(module, get_device(), dict(
            broadcast_buffers=broadcast_buffers,
            find_unused_parameters=find_unused_parameters, **kwargs))

    def _wrap_children(self, parent: nn.Module, device: str,
                       ddp_kwargs: dict) -> None:
        for name, child in parent._modules.items():
            if child is None:
                continue
            if not any(p.requires_grad for p in child.parameters()):
                parent._modules[name] = child.to(device)
            elif isinstance(child, (nn.ModuleList, nn.ModuleDict)):
                self._wrap_children(child, device, ddp_kwargs)
            else:
                ddp = MMDistributedDataParallel(module=child.to(device),
                                                **ddp_kwargs)
                ddp.register_state_dict_post_hook(_drop_ddp_prefix)
                ddp.register_load_state_dict_pre_hook(_add_ddp_prefix)
                parent._modules[name] = ddp


def _drop_ddp_prefix(module: nn.Module, state_dict: dict, prefix: str,
                     local_metadata: dict) -> None:
    """``encoder.module.conv.weight`` -> ``encoder.conv.weight``."""
    inner = prefix + 'module.'
    for key in [k for k in state_dict if k.startswith(inner)]:
        state_dict[prefix + key[len(inner):]] = state_dict.pop(key)


def _add_ddp_prefix(module: nn.Module, state_dict: dict, prefix: str,
                    *args) -> None:
    """``encoder.conv.weight`` -> ``encoder.module.conv.weight``."""
    inner = prefix + 'module.'
    for key in [k for k in state_dict
                if k.startswith(prefix) and not k.startswith(inner)]:
        state_dict[inner + key[len(prefix):]] = state_dict.pop(key)
