"""Fashion-MNIST generation metrics from fqzoo's classifier.

- ``fmnist_class_accuracy``: the fraction of samples of class c that the
  classifier assigns to c, over all samples, and per class
  (``fmnist_class_accuracy_per_class``);
- ``fid_fmnist_classifier``: the Fréchet distance between the classifier's
  penultimate features (128-d) of the samples and of the Fashion-MNIST
  test set, as MNIST-scale papers compute FID with a domain classifier.
  Comparable only between fqzoo runs scored by the same classifier weights.

The classifier is :mod:`fqzoo.evaluation.fmnist_classifier`.
"""
from typing import Dict, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from fqzoo.evaluation.fmnist_classifier import (
    load_fmnist_classifier,
    predict,
    uint8_to_inputs,
)
from fqzoo.evaluation.metrics.fid import frechet_distance

from .inputs import load_fashion_mnist_images


def class_accuracy(predictions: Union[np.ndarray, Tensor],
                   labels: Union[np.ndarray, Tensor],
                   classes: Optional[Sequence[int]] = None) -> Dict:
    """How often the predicted class is the class asked for.

    Args:
        predictions (np.ndarray | Tensor): ``[N]`` predicted classes.
        labels (np.ndarray | Tensor): ``[N]`` the classes the samples were
            drawn for.
        classes (Sequence[int], optional): classes to report; defaults to
            those in ``labels``.

    Returns:
        dict: ``accuracy`` (over all samples) and ``per_class``
        (``{class: accuracy over its samples}``, NaN for a class with none).

    Example:
        >>> class_accuracy(np.array([0, 1, 1, 1]), np.array([0, 0, 1, 1]))
        {'accuracy': 0.75, 'per_class': {0: 0.5, 1: 1.0}}
    """
    predictions = np.asarray(predictions).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    if predictions.shape != labels.shape:
        raise ValueError(f'{len(predictions)} predictions for '
                         f'{len(labels)} labels')
    correct = predictions == labels
    classes = sorted(set(labels.tolist())) if classes is None else classes
    per_class = {int(c): float(correct[labels == c].mean())
                 if (labels == c).any() else float('nan') for c in classes}
    return dict(accuracy=float(correct.mean()), per_class=per_class)


def fmnist_metrics(samples: np.ndarray, labels: np.ndarray, *,
                   checkpoint: Optional[str] = None,
                   reference: Optional[np.ndarray] = None,
                   fmnist_root: Optional[str] = None,
                   device: Union[str, torch.device] = 'cpu',
                   batch_size: int = 500) -> Dict:
    """Class accuracy and classifier FID of Fashion-MNIST samples.

    Args:
        samples (np.ndarray): uint8 ``[N, H, W, 3]``.
        labels (np.ndarray): ``[N]`` the class each was drawn for.
        checkpoint (str, optional): classifier weights; defaults to the
            shipped ones.
        reference (np.ndarray, optional): uint8 ``[M, H, W, 3]`` reference
            images. Defaults to the Fashion-MNIST test set (10000) at 32x32,
            quantized to uint8 as samples are.
        fmnist_root (str, optional): the Fashion-MNIST IDX folder.
            Defaults to None: ``$FQZOO_FASHION_MNIST``, else the Debian
            package's folder.
        device (str | torch.device): Defaults to 'cpu'.
        batch_size (int): Defaults to 500.

    Returns:
        dict: ``fmnist_class_accuracy``,
        ``fmnist_class_accuracy_per_class`` and ``fid_fmnist_classifier``.
    """
    model = load_fmnist_classifier(checkpoint, device)
    if reference is None:
        reference = load_fashion_mnist_images('test', 32, fmnist_root)[0]
    logits, feats = predict(model, uint8_to_inputs(samples), batch_size)
    _, ref_feats = predict(model, uint8_to_inputs(reference), batch_size)
    acc = class_accuracy(logits.argmax(1).numpy(), labels)
    return dict(fmnist_class_accuracy=acc['accuracy'],
                fmnist_class_accuracy_per_class=acc['per_class'],
                fid_fmnist_classifier=frechet_distance(feats, ref_feats))
