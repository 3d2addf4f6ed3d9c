"""Held-out negative log-likelihood of a token generator."""
import math
from typing import List, Optional, Sequence

from mmengine.evaluator import BaseMetric

from fqzoo.registry import METRICS

from .utils import require_results


@METRICS.register_module()
class TokenNLL(BaseMetric):
    """Teacher-forced NLL of held-out codes, per sub-token and in all.

    Reads the per-sample ``nll`` lists (nats per position, one entry per
    sub-token) that ``AutoregressiveGenerator.predict`` returns. Logs
    ``nll_{g}`` (mean over samples and positions), ``nll`` (their mean, the
    training loss's definition), ``bits_per_position`` (the sum over
    sub-tokens in bits: what coding one position costs) and ``ppl_{g}``
    (``exp(nll_{g})``).

    >>> metric = TokenNLL()
    """

    def __init__(self, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)

    def process(self, data_batch: object,
                data_samples: Sequence[dict]) -> None:
        for i, sample in enumerate(data_samples):
            if 'nll' not in sample:
                raise KeyError(f'TokenNLL: data sample {i} has no \'nll\' '
                               f'field (it has {sorted(sample)}); the '
                               'generator\'s predict() gives it')
            self.results.append([float(v) for v in sample['nll']])

    def compute_metrics(self, results: List[List[float]]) -> dict:
        require_results('TokenNLL', results)
        num = len(results[0])
        lengths = sorted({len(r) for r in results})
        if num == 0 or len(lengths) > 1:
            raise ValueError(f'TokenNLL: every sample needs the same number '
                             f'(>= 1) of sub-token NLLs, got {lengths}')
        per_token = [sum(r[g] for r in results) / len(results)
                     for g in range(num)]
        metrics = {'nll': sum(per_token) / num,
                   'bits_per_position': sum(per_token) / math.log(2)}
        for g, value in enumerate(per_token):
            metrics[f'nll_{g}'] = value
            metrics[f'ppl_{g}'] = math.exp(value)
        return metrics
