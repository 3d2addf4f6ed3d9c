"""What a Fashion-MNIST classifier still sees in reconstructions.

An instrument for Fashion-MNIST tokenizers that is not their teacher: the
classifier of :mod:`fqzoo.evaluation.fmnist_classifier` (trained here on the
Fashion-MNIST training set, weights shipped with fqzoo) judges each input
and its reconstruction.

- ``fmnist_recon_agreement``: the fraction of reconstructions it puts in the
  class it gives their input (1.0 when the tokenizer keeps what makes a shirt
  a shirt);
- ``fid_fmnist_recon``: the Fréchet distance between its 128-d penultimate
  features of the inputs and of the reconstructions (rFID with a domain
  classifier instead of Inception).

Comparable only between runs scored by the same classifier weights.
"""
from typing import List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from torch import Tensor

from fqzoo.evaluation.fmnist_classifier import load_fmnist_classifier
from fqzoo.registry import METRICS

from .fid import frechet_distance
from .utils import check_image_pair, require_results, stack_field


@METRICS.register_module()
class FashionMNISTReconFidelity(BaseMetric):
    """Class agreement and classifier FID of reconstructions vs inputs.

    Args:
        checkpoint (str, optional): Classifier weights saved by
            ``tools/train_fmnist_classifier.py``. Defaults to the shipped
            ones.
        device (str, optional): Where the classifier runs; None runs it
            where the samples are. Defaults to None.
        collect_device (str): Defaults to 'cpu'.
        prefix (str, optional): Defaults to None.

    >>> metric = FashionMNISTReconFidelity()
    """

    def __init__(self, checkpoint: Optional[str] = None,
                 device: Optional[str] = None, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.classifier = load_fmnist_classifier(checkpoint)
        self.device = device

    def _judge(self, images: Tensor) -> tuple:
        """``(predicted classes [B], features [B, 128])`` on CPU."""
        device = self.device or images.device
        model = self.classifier.to(device)
        feats = model.features(images.to(device))
        return (model.classifier(feats).argmax(1).cpu(),
                feats.float().cpu())

    @torch.no_grad()
    def process(self, data_batch: object,
                data_samples: Sequence[dict]) -> None:
        """Store each sample's classes and features, input and recon."""
        inputs = stack_field(data_samples, 'inputs')
        recon = stack_field(data_samples, 'recon')
        check_image_pair(type(self).__name__, recon, inputs)
        (cls_in, feat_in), (cls_rec, feat_rec) = (self._judge(inputs),
                                                  self._judge(recon))
        for i in range(len(data_samples)):
            self.results.append(dict(
                agree=bool(cls_in[i] == cls_rec[i]),
                real=feat_in[i], fake=feat_rec[i]))

    def compute_metrics(self, results: List[dict]) -> dict:
        """Agreement over all samples, FID inputs vs recons."""
        require_results(type(self).__name__, results)
        agree = sum(r['agree'] for r in results) / len(results)
        return dict(
            fmnist_recon_agreement=agree,
            fid_fmnist_recon=frechet_distance(
                torch.stack([r['real'] for r in results]),
                torch.stack([r['fake'] for r in results])))
