"""Codebook usage over a whole evaluation set, per sub-codebook."""
from typing import Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from torch import Tensor

from fqzoo.registry import METRICS

from .utils import check_code_sample, require_results


@METRICS.register_module()
class CodebookUsage(BaseMetric):
    """Fraction of codes used and code perplexity over the evaluation set.

    Counts how often each code of each sub-codebook ``g`` is chosen over all
    positions of all images. Logs ``usage_{g}`` (codes used at least once /
    codebook size), ``perplexity_{g}`` (exp of the entropy of the code
    frequencies; equals the codebook size for uniform use) and their means
    over sub-codebooks, ``usage`` and ``perplexity``. Memory: a ``[G, K]``
    count table and one pointer per image, not the images' indices.

    >>> metric = CodebookUsage()
    """

    def __init__(self, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)

    def process(self, data_batch: object,
                data_samples: Sequence[dict]) -> None:
        """Fold each sample's codes into running counts.

        ``self.results`` keeps one entry per sample, as MMEngine's
        ``collect_results`` needs to drop the samples a distributed sampler
        repeats (each rank's last one): the first is the ``[G, K]`` count
        table of all samples but the latest, the last is the latest
        sample's indices, and the ones between are 0 (not None: MMEngine's
        ``collect_results`` drops None entries before cutting the padding,
        so None slots would let the padding through). Memory is thus one
        table, one sample's indices and a pointer per image.

        Raises:
            KeyError, ValueError: naming the sample, when its ``indices`` or
                ``codebook_size`` are missing, are not ``[G, h, w]`` codes in
                ``[0, codebook_size)`` or differ in ``G`` or
                ``codebook_size`` from the earlier samples'.
        """
        for i, sample in enumerate(data_samples):
            check_code_sample('CodebookUsage', sample, i)
            latest = dict(indices=sample['indices'].cpu().clone(),
                          codebook_size=int(sample['codebook_size']))
            if self.results and _groups_and_size(self.results[0]) != \
                    _groups_and_size(latest):
                raise ValueError(
                    f'CodebookUsage: data sample {i} has (G, codebook_size) '
                    f'= {_groups_and_size(latest)}, the earlier samples '
                    f'{_groups_and_size(self.results[0])}')
            if len(self.results) == 1:
                self.results[0] = _add_counts(None, self.results[0])
            elif len(self.results) > 1:
                _add_counts(self.results[0], self.results[-1])
                self.results[-1] = 0
            self.results.append(latest)

    def compute_metrics(self, results: list) -> dict:
        """Usage and perplexity per sub-codebook and their means (the
        tables and latest samples of all processes added up)."""
        require_results('CodebookUsage', results)
        tables = [entry for entry in results if torch.is_tensor(entry)]
        counts = torch.stack(tables).sum(0) if tables else None
        for entry in results:
            if isinstance(entry, dict):
                counts = _add_counts(counts, entry)
        counts = counts.double()
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


def _groups_and_size(entry) -> tuple:
    """``(G, K)`` of a count table or of one sample's entry."""
    if torch.is_tensor(entry):
        return tuple(entry.shape)
    return len(entry['indices']), entry['codebook_size']


def _add_counts(table: Optional[Tensor], sample: dict) -> Tensor:
    """Add one sample's ``[G, h, w]`` indices to the ``[G, K]`` count
    ``table`` (in place; a new table when None) and return it."""
    indices, size = sample['indices'], sample['codebook_size']
    groups = indices.flatten(1)
    if table is None:
        table = torch.zeros(len(groups), size, dtype=torch.int64)
    offsets = torch.arange(len(groups)).unsqueeze(1) * size
    flat = (groups + offsets).flatten()
    table.view(-1).scatter_add_(0, flat, torch.ones_like(flat))
    return table
