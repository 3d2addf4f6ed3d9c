"""Checks shared by the mutation-kill tests of quantizers with three codes
in one dimension: ``z << 0`` takes code 0, ``z = 0`` code 1 (never fed
here), ``z >> 0`` code 2 (FSQ with ``levels=(3,)``, SimVQ with the codes
-1, 0, 1 through an identity projection). :func:`steps_until_dead` fits the
one-bit sign quantizers too (LFQ, BSQ: ``z < 0`` code 0, ``z > 0`` code
1)."""
import math
from typing import Optional

import torch
from torch import nn


def _feed(quantizer: nn.Module, value: float) -> None:
    quantizer(torch.full((1, 1, 1, 1), value))


def _dead(quantizer: nn.Module) -> int:
    return quantizer.codebook_stats()[0]['dead_codes'].item()


def check_batch_usage_and_perplexity(quantizer: nn.Module) -> None:
    """Codes [0, 2, 2, 2]: usage 2/3, perplexity exp(entropy)."""
    out = quantizer.eval()(
        torch.tensor([-10., 10., 10., 10.]).view(1, 1, 2, 2))
    assert out.indices.view(-1).tolist() == [0, 2, 2, 2]
    entropy = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert math.isclose(out.metrics['usage'].item(), 2 / 3, rel_tol=1e-6)
    assert math.isclose(out.metrics['perplexity'].item(), math.exp(entropy),
                        rel_tol=1e-5)


def check_codes_die_after_100_steps(quantizer: nn.Module) -> None:
    """The default usage window: a code unseen for 100 steps is dead."""
    quantizer.train()
    _feed(quantizer, -10.)
    for _ in range(98):
        _feed(quantizer, 10.)
    assert _dead(quantizer) == 0
    _feed(quantizer, 10.)  # step 100: code 1 unseen for 100
    assert _dead(quantizer) == 1
    _feed(quantizer, 10.)  # code 0 last seen 100 steps ago
    assert _dead(quantizer) == 2


def check_codes_die_after_4_steps(quantizer: nn.Module) -> None:
    """A quantizer built with ``stats_window=4``."""
    quantizer.train()
    for _ in range(3):
        _feed(quantizer, 10.)
    assert _dead(quantizer) == 0
    _feed(quantizer, 10.)  # codes 0 and 1 unseen for 4 steps
    assert _dead(quantizer) == 2


def steps_until_dead(quantizer: nn.Module) -> Optional[int]:
    """Feed ``z << 0`` once, then ``z >> 0`` until the first code is dead;
    the steps it went unseen (None if not within 300)."""
    quantizer.train()
    _feed(quantizer, -10.)
    for steps in range(1, 300):
        _feed(quantizer, 10.)
        if quantizer.codebook_stats()[0]['dead_codes'].item():
            return steps
    return None
