"""TokenNLL and the generator's per-sample NLL against cross-entropies
computed by hand from the teacher-forced logits."""
import math

import pytest
import torch
import torch.nn.functional as F

from fqzoo.evaluation.metrics import TokenNLL
from fqzoo.models.generators import AutoregressiveGenerator


def test_token_nll_against_hand_computed_cross_entropy():
    torch.manual_seed(0)
    gen = AutoregressiveGenerator(
        backbone=dict(type='LlamaGenBackbone', width=16, num_layers=1,
                      num_heads=2),
        head=dict(type='FactorizedARHead', num_layers=1, num_heads=2),
        num_classes=3, grid_size=(2, 3), codebook_sizes=[5, 7]).eval()
    for out in gen.head.outputs:
        torch.nn.init.normal_(out.weight)
    codes = torch.stack([torch.randint(5, (4, 2, 3)),
                         torch.randint(7, (4, 2, 3))], 1)
    labels = torch.tensor([0, 1, 2, 0])
    with torch.no_grad():
        logits = gen.logits(codes, labels)
    targets = codes.flatten(2)  # [B, G, N], raster order
    by_hand = torch.stack([
        torch.stack([F.cross_entropy(logits[g][b], targets[b, g])
                     for g in range(2)]) for b in range(4)])  # [B, G]

    predicted = gen.predict(codes, labels)
    assert torch.tensor([p['nll'] for p in predicted]) == pytest.approx(
        by_hand, abs=1e-5)

    metric = TokenNLL()
    metric.process(None, predicted)
    metrics = metric.compute_metrics(metric.results)
    per_token = by_hand.mean(0)
    for g in range(2):
        assert metrics[f'nll_{g}'] == pytest.approx(float(per_token[g]),
                                                    abs=1e-5)
        assert metrics[f'ppl_{g}'] == pytest.approx(
            math.exp(float(per_token[g])), rel=1e-5)
    assert metrics['nll'] == pytest.approx(float(per_token.mean()), abs=1e-5)
    assert metrics['bits_per_position'] == pytest.approx(
        float(per_token.sum()) / math.log(2), abs=1e-5)
    # the metric's nll is the training loss's definition
    assert metrics['nll'] == pytest.approx(
        float(gen.loss(codes, labels)['loss']), abs=1e-5)
    assert not any('loss' in key for key in metrics)
