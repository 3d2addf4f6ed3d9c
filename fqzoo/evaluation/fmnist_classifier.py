"""A small CNN classifier of Fashion-MNIST, the judge of generated samples.

MNIST-scale generation papers score samples with a classifier trained on the
real training set: the fraction of samples of class c it classifies as c,
and a Fréchet distance on its penultimate features (the Inception-free
analogue of FID). fqzoo's classifier is trained by
``tools/train_fmnist_classifier.py``; its weights ship in
``fqzoo/evaluation/assets/fmnist_classifier.pt`` (a state dict of tensors)
with ``fmnist_classifier.json`` (how it was trained, its test accuracy).

Its input is what :class:`fqzoo.datasets.FashionMNIST` gives, ``[B, 3, 32,
32]`` floats in [-1, 1] (gray replicated to three channels), or uint8
images (see :func:`uint8_to_inputs`). The channels are averaged first, so a
colour cast in decoded samples is ignored, as Fashion-MNIST has none; other
sizes are resized to 32x32 (bilinear, antialiased).
"""
import json
import math
import time
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fqzoo.datasets.fashion_mnist import CLASSES, FashionMNIST
from fqzoo.utils.checkpoint import safe_load

ASSETS = Path(__file__).resolve().parent / 'assets'
DEFAULT_CHECKPOINT = ASSETS / 'fmnist_classifier.pt'
INPUT_SIZE = 32
NUM_CLASSES = len(CLASSES)


def _block(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
        nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True), nn.MaxPool2d(2))


class FashionMNISTClassifier(nn.Module):
    """Three conv blocks (two 3x3 convs + BN + ReLU, then 2x2 max-pool),
    global average pooling, a ``feature_dim`` hidden layer (the features of
    :meth:`features`) and a linear classifier.

    Args:
        width (int): channels of the first block (doubled per block).
            Defaults to 16.
        feature_dim (int): width of the penultimate layer. Defaults to 128.
        dropout (float): before the last layer, in training.
            Defaults to 0.2.

    Example:
        >>> model = FashionMNISTClassifier().eval()
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(self, width: int = 16, feature_dim: int = 128,
                 dropout: float = 0.2) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.trunk = nn.Sequential(_block(1, width), _block(width, 2 * width),
                                   _block(2 * width, 4 * width))
        self.hidden = nn.Linear(4 * width, feature_dim)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(feature_dim, NUM_CLASSES)

    @staticmethod
    def prepare(images: Tensor) -> Tensor:
        """``[B, C, H, W]`` floats in [-1, 1] -> ``[B, 1, 32, 32]`` gray."""
        if images.dim() != 4:
            raise ValueError(f'images must be [B, C, H, W], got '
                             f'{list(images.shape)}')
        gray = images.float().mean(1, keepdim=True)
        if gray.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            gray = F.interpolate(gray, size=(INPUT_SIZE, INPUT_SIZE),
                                 mode='bilinear', align_corners=False,
                                 antialias=True)
        return gray

    def features(self, images: Tensor) -> Tensor:
        """Penultimate features ``[B, feature_dim]`` (after the ReLU)."""
        x = self.trunk(self.prepare(images)).mean((2, 3))
        return F.relu(self.hidden(x))

    def forward(self, images: Tensor) -> Tensor:
        """Class logits ``[B, 10]``."""
        return self.classifier(self.dropout(self.features(images)))


def uint8_to_inputs(images: Union[Tensor, np.ndarray]) -> Tensor:
    """uint8 images, ``[B, H, W, 3]`` (as in a samples ``.npz``) or
    ``[B, 3, H, W]``, as floats in [-1, 1] NCHW."""
    images = torch.as_tensor(images)
    if images.dtype != torch.uint8:
        raise TypeError(f'expected uint8 images, got {images.dtype}')
    if images.dim() == 4 and images.shape[-1] in (1, 3) \
            and images.shape[1] not in (1, 3):
        images = images.permute(0, 3, 1, 2)
    return images.float() / 127.5 - 1


def load_fmnist_classifier(checkpoint: Optional[Union[str, Path]] = None,
                           device: Union[str, torch.device] = 'cpu'
                           ) -> FashionMNISTClassifier:
    """The trained classifier in eval mode.

    Args:
        checkpoint (str | Path, optional): a state dict saved by
            :func:`save_classifier`. Defaults to the weights shipped in
            ``fqzoo/evaluation/assets/fmnist_classifier.pt``.
        device (str | torch.device): Defaults to 'cpu'.
    """
    path = Path(checkpoint or DEFAULT_CHECKPOINT)
    if not path.is_file():
        raise FileNotFoundError(
            f'Fashion-MNIST classifier weights not found: {path}. Train '
            'them with tools/train_fmnist_classifier.py')
    state = safe_load(path)
    model = FashionMNISTClassifier(
        width=int(state['trunk.0.0.weight'].shape[0]),
        feature_dim=int(state['hidden.weight'].shape[0]))
    model.load_state_dict(state)
    return model.to(device).eval()


def save_classifier(model: FashionMNISTClassifier, path: Union[str, Path],
                    info: Optional[dict] = None) -> Path:
    """Write the state dict (tensors only) to ``path`` and ``info`` to
    the ``.json`` next to it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu().contiguous()
                for k, v in model.state_dict().items()}, path)
    if info is not None:
        path.with_suffix('.json').write_text(json.dumps(info, indent=2) + '\n')
    return path


def load_split(data_root: str, split: str,
               size: int = INPUT_SIZE) -> Tuple[Tensor, Tensor]:
    """A Fashion-MNIST split as the fqzoo dataset gives it:
    ``(images [N, 3, size, size] in [-1, 1], labels [N])``."""
    dataset = FashionMNIST(data_root=data_root, split=split,
                           image_size=size)
    images = torch.stack([dataset[i]['inputs'] for i in range(len(dataset))])
    return images, torch.from_numpy(dataset.labels.astype(np.int64))


@torch.no_grad()
def predict(model: nn.Module, images: Tensor, batch_size: int = 500
            ) -> Tuple[Tensor, Tensor]:
    """``(logits [N, 10], features [N, feature_dim])`` of float images in
    [-1, 1], on CPU."""
    device = next(model.parameters()).device
    logits, feats = [], []
    for batch in images.split(batch_size):
        feat = model.features(batch.to(device))
        feats.append(feat.cpu())
        logits.append(model.classifier(feat).cpu())
    if not logits:
        return (torch.zeros(0, NUM_CLASSES),
                torch.zeros(0, model.feature_dim))
    return torch.cat(logits), torch.cat(feats)


def _shift(images: Tensor, max_shift: int, rng: torch.Generator) -> Tensor:
    """Each image translated by up to ``max_shift`` pixels, background -1."""
    height, width = images.shape[-2:]
    padded = F.pad(images, [max_shift] * 4, value=-1.0)
    offsets = torch.randint(0, 2 * max_shift + 1, (len(images), 2),
                            generator=rng)
    return torch.stack([p[:, y:y + height, x:x + width]
                        for p, (y, x) in zip(padded, offsets.tolist())])


def train_classifier(train: Tuple[Tensor, Tensor], test: Tuple[Tensor, Tensor],
                     *, epochs: int = 4, batch_size: int = 128,
                     lr: float = 3e-3, weight_decay: float = 5e-4,
                     max_shift: int = 2, seed: int = 0,
                     log: Callable[[str], None] = print
                     ) -> Tuple[FashionMNISTClassifier, Dict]:
    """Train :class:`FashionMNISTClassifier` (AdamW, one-cycle schedule,
    random flips and shifts of up to ``max_shift`` pixels).

    Args:
        train (tuple[Tensor, Tensor]): images ``[N, 3, 32, 32]`` in [-1, 1]
            and labels ``[N]`` (see :func:`load_split`).
        test (tuple[Tensor, Tensor]): evaluated after every epoch.
        epochs (int): Defaults to 4.
        batch_size (int): Defaults to 128.
        lr (float): peak learning rate. Defaults to 3e-3.
        weight_decay (float): Defaults to 5e-4.
        max_shift (int): Defaults to 2.
        seed (int): initialisation and data order. Defaults to 0.
        log (Callable[[str], None]): progress lines. Defaults to print.

    Returns:
        tuple: the model in eval mode and ``dict(test_accuracy,
        history=[{epoch, train_loss, test_accuracy, seconds}, ...])``.
    """
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    model = FashionMNISTClassifier()
    images, labels = train
    steps = epochs * math.ceil(len(images) / batch_size)
    optim = torch.optim.AdamW(model.parameters(), lr=lr,
                              weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(optim, max_lr=lr,
                                                total_steps=steps)
    history, start = [], time.time()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(images), generator=rng)
        total, count = 0.0, 0
        for idx in order.split(batch_size):
            x = images[idx]
            flip = torch.rand(len(x), generator=rng) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            if max_shift:
                x = _shift(x, max_shift, rng)
            loss = F.cross_entropy(model(x), labels[idx])
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        model.eval()
        acc = accuracy(model, *test)
        history.append(dict(epoch=epoch + 1, train_loss=total / count,
                            test_accuracy=acc,
                            seconds=round(time.time() - start, 1)))
        log(f'epoch {epoch + 1}/{epochs}: train loss {total / count:.4f}, '
            f'test accuracy {acc:.4f} ({time.time() - start:.0f} s)')
    return model.eval(), dict(test_accuracy=history[-1]['test_accuracy'],
                              history=history)


def accuracy(model: nn.Module, images: Tensor, labels: Tensor) -> float:
    """Top-1 accuracy of ``model`` on float images in [-1, 1]."""
    logits, _ = predict(model, images)
    return float((logits.argmax(1) == labels).float().mean())
