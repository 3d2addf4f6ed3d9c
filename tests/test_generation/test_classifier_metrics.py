"""Class accuracy and the classifier Fréchet distance, against values
computed by hand."""
import math

import numpy as np
import pytest
import torch

from fqzoo.evaluation.metrics.fid import frechet_distance
from fqzoo.generation.classifier_metrics import class_accuracy


def test_class_accuracy_on_hand_made_predictions():
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    preds = np.array([0, 0, 1, 2, 1, 1, 0, 2])
    acc = class_accuracy(preds, labels)
    assert acc['accuracy'] == pytest.approx(5 / 8)
    assert acc['per_class'] == pytest.approx({0: 0.5, 1: 1.0, 2: 0.5})
    acc = class_accuracy(torch.tensor(preds), torch.tensor(labels),
                         classes=[2, 5])
    assert acc['per_class'][2] == 0.5 and math.isnan(acc['per_class'][5])
    with pytest.raises(ValueError, match='3 predictions for 2 labels'):
        class_accuracy([0, 1, 2], [0, 1])


def test_frechet_distance_against_the_closed_form():
    rng = torch.Generator().manual_seed(0)
    feats = torch.randn(400, 8, generator=rng, dtype=torch.float64) \
        @ torch.randn(8, 8, generator=rng, dtype=torch.float64)
    feats = feats - feats.mean(0)
    assert abs(frechet_distance(feats, feats)) < 1e-8
    # A centred, B = s A + m: |m|^2 + (1 - s)^2 tr(cov A)
    shift = torch.arange(8, dtype=torch.float64) / 4
    for scale in (1.0, 0.5, 2.0):
        expected = float(shift @ shift) + (1 - scale) ** 2 * float(
            torch.cov(feats.T).trace())
        assert frechet_distance(feats, scale * feats + shift) == \
            pytest.approx(expected, rel=1e-6)
