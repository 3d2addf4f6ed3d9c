"""The frozen-teacher frame shared by every semantic teacher.

Teachers supply the targets of FQGAN's representation-learning objective
(Bai et al., "Factorized Visual Tokenization and Generation", 2024,
arXiv 2411.16681): a frozen pretrained image model maps the input images to a
global feature that a prediction head on a branch's quantized map learns to
match. A teacher takes images in [-1, 1], applies its own resize and
normalisation, and returns ``[B, embed_dim]``. It is a fixed measuring
instrument: always in eval mode, no trainable parameters, no autograd graph.
"""
from abc import ABCMeta, abstractmethod
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fqzoo.utils.checkpoint import safe_load

_INTERPOLATIONS = ('nearest', 'bilinear', 'bicubic')


class MissingWeightsError(RuntimeError):
    """Pretrained teacher weights are neither local nor downloadable."""


def load_state_dict_file(path: Union[str, Path]) -> dict:
    """A state dict from ``.safetensors`` or a ``torch.save`` file (loaded
    with ``weights_only=True``); a ``state_dict``/``model`` entry is
    unwrapped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'Teacher checkpoint not found: {path}')
    if path.suffix == '.safetensors':
        from safetensors.torch import load_file
        return load_file(str(path))
    state = safe_load(path)
    for key in ('state_dict', 'model'):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            return state[key]
    return state


def download_or_fail(download: Callable[[], nn.Module], weights: str,
                     hint: str) -> nn.Module:
    """Run ``download``; on failure raise :class:`MissingWeightsError`
    naming ``weights`` and how to pass them as ``checkpoint=``."""
    try:
        return download()
    except Exception as err:  # hub clients raise many types when offline
        raise MissingWeightsError(
            f'Could not load the pretrained weights {weights} (no local '
            f'checkpoint= given and the download failed: {err}). Download '
            f'them on a machine with network access ({hint}) and pass '
            'checkpoint=<local path> in the teacher config, or use '
            'pretrained=False for random weights in tests.') from err


class FrozenTeacher(nn.Module, metaclass=ABCMeta):
    """Base class: resize, normalise, extract a global feature, frozen.

    Subclasses set ``self.embed_dim`` and implement :meth:`features` on
    normalised ``img_size`` images, then call :meth:`freeze`. A subclass
    without :meth:`features` cannot be instantiated (``TypeError``).

    Args:
        mean (Sequence[float]): normalisation mean on [0, 1] images.
        std (Sequence[float]): normalisation std on [0, 1] images.
        img_size (int, optional): side the images are resized to; None keeps
            the input size. Defaults to 224.
        interpolation (str): resize mode, 'nearest' (the released FQGAN
            code's), 'bilinear' or 'bicubic'. Defaults to 'bicubic'.
    """

    embed_dim: int

    def __init__(self, mean: Sequence[float], std: Sequence[float],
                 img_size: Optional[int] = 224,
                 interpolation: str = 'bicubic') -> None:
        super().__init__()
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f'interpolation must be one of {_INTERPOLATIONS}'
                             f', got "{interpolation}"')
        self.img_size = img_size
        self.interpolation = interpolation
        self.register_buffer('mean', torch.tensor(mean).view(1, -1, 1, 1),
                             persistent=False)
        self.register_buffer('std', torch.tensor(std).view(1, -1, 1, 1),
                             persistent=False)

    def freeze(self) -> None:
        """No trainable parameters, eval mode."""
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> 'FrozenTeacher':
        """Stay in eval mode whatever ``mode`` says."""
        return super().train(False)

    def preprocess(self, images: Tensor) -> Tensor:
        """Images in [-1, 1] to the network's input (resized, normalised)."""
        x = (images.float() + 1) / 2
        if self.img_size is not None and x.shape[-2:] != (self.img_size,
                                                          self.img_size):
            kwargs = ({} if self.interpolation == 'nearest' else
                      dict(align_corners=False))
            x = F.interpolate(x, size=(self.img_size, self.img_size),
                              mode=self.interpolation, **kwargs)
        return (x - self.mean) / self.std

    @abstractmethod
    def features(self, x: Tensor) -> Tensor:
        """Global feature ``[B, embed_dim]`` of preprocessed images."""

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        """Images ``[B, 3, H, W]`` in [-1, 1] to ``[B, embed_dim]`` (float32,
        no graph)."""
        return self.features(self.preprocess(images)).float()
