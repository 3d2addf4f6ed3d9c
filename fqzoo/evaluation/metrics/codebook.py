"""Codebook usage over a whole evaluation set, per sub-codebook."""
from typing import List, Optional, Sequence

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
    over sub-codebooks, ``usage`` and ``perplexity``. Memory is one
    ``[G, K]`` count table, whatever the number of images. In distributed
    evaluation, the samples a sampler repeats to even out the ranks (fewer
    than the number of processes) are counted too.

    >>> metric = CodebookUsage()
    """

    def __init__(self, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)

    def process(self, data_batch: object,
                data_samples: Sequence[dict]) -> None:
        """Add the batch's code counts to the running ``[G, K]`` counts.

        Only the counts are kept (``self.results`` holds one ``[G, K]``
        int64 tensor per process), so memory does not grow with the number
        of images or positions."""
        size = int(data_samples[0]['codebook_size'])
        indices = torch.stack([sample['indices'] for sample in data_samples])
        groups = indices.transpose(0, 1).flatten(1).cpu()  # [G, B*h*w]
        offsets = torch.arange(len(groups)).unsqueeze(1) * size
        counts = torch.bincount((groups + offsets).flatten(),
                                minlength=len(groups) * size)
        counts = counts.view(len(groups), size)
        if self.results:
            self.results[0] += counts
        else:
            self.results.append(counts)

    def compute_metrics(self, results: List[Tensor]) -> dict:
        """Usage and perplexity per sub-codebook and their means (the
        counts of all processes summed)."""
        counts = torch.stack(results).sum(0).double()
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
