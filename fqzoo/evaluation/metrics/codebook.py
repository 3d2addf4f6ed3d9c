"""Codebook usage over a whole evaluation set, per sub-codebook."""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.evaluator import BaseMetric
from torch import Tensor

from fqzoo.registry import METRICS


@METRICS.register_module()
class CodebookUsage(BaseMetric):
    """Fraction of codes used and code perplexity over the evaluation set.

    Counts how often each code of each sub-codebook ``g`` is chosen over all
    positions of all images. Logs ``usage_{g}`` (codes used at least once /
    codebook size), ``perplexity_{g}`` (exp of the entropy of the code
    frequencies; equals the codebook size for uniform use) and their means
    over sub-codebooks, ``usage`` and ``perplexity``.

    >>> metric = CodebookUsage()
    """

    def __init__(self, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)

    def process(self, data_batch: object,
                data_samples: Sequence[dict]) -> None:
        """Store each sample's indices (``[G, h, w]``, on CPU)."""
        for sample in data_samples:
            self.results.append((sample['indices'].cpu(),
                                 int(sample['codebook_size'])))

    def compute_metrics(self, results: List[Tuple[Tensor, int]]) -> dict:
        """Usage and perplexity per sub-codebook and their means."""
        size = results[0][1]
        indices = torch.stack([idx for idx, _ in results]).transpose(0, 1)
        counts = torch.stack([
            torch.bincount(group.flatten(), minlength=size)
            for group in indices]).double()
        usage = (counts > 0).double().mean(1)
        probs = counts / counts.sum(1, keepdim=True)
        entropy = -torch.special.xlogy(probs, probs).sum(1)
        perplexity = entropy.exp()
        metrics = {'usage': usage.mean().item(),
                   'perplexity': perplexity.mean().item()}
        for g, (use, ppl) in enumerate(zip(usage.tolist(),
                                           perplexity.tolist())):
            metrics[f'usage_{g}'] = use
            metrics[f'perplexity_{g}'] = ppl
        return metrics
