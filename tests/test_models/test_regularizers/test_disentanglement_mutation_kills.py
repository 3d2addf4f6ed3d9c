"""Disentanglement regularizer behaviour that mutation testing showed no
test pinned down (docs/testing.md lists the mutants these tests kill)."""
import re

import pytest
import torch

from fqzoo.models.quantizers import QuantizerOutput
from fqzoo.models.regularizers import DisentanglementRegularizer


def test_too_few_branches_error_names_the_component_and_the_count():
    q = torch.randn(1, 4, 2, 2)
    one = QuantizerOutput(q, torch.zeros(1, 1, 2, 2, dtype=torch.long))
    reg = DisentanglementRegularizer(branches=[1])
    two = QuantizerOutput(q, torch.zeros(1, 2, 2, 2, dtype=torch.long),
                          branches=[q[:, :2], q[:, 2:]])
    for bad in (lambda: DisentanglementRegularizer()(one),
                lambda: reg(two)):
        with pytest.raises(ValueError, match=re.escape(
                'DisentanglementRegularizer needs at least two branches, '
                'got 1')):
            bad()
