"""SimVQ values that mutation testing showed no test pinned down
(docs/testing.md lists the mutants these tests kill).

A one-dimensional SimVQ with the frozen codes -1, 0, 1 and an identity
projection picks its code by hand: ``z << 0`` is code 0, ``z >> 0`` code 2.
"""
import math

import torch
from three_code_checks import (
    check_batch_usage_and_perplexity,
    check_codes_die_after_4_steps,
    check_codes_die_after_100_steps,
)

from fqzoo.models.quantizers import SimVQ


def three_codes(**kwargs) -> SimVQ:
    """Codes -1, 0, 1 through an identity projection (W = 1, b = 0)."""
    simvq = SimVQ(codebook_size=3, embed_dim=1, **kwargs)
    with torch.no_grad():
        simvq.embedding.weight.copy_(torch.tensor([[-1.], [0.], [1.]]))
        simvq.embedding_proj.weight.fill_(1.)
        simvq.embedding_proj.bias.zero_()
    return simvq


def test_defaults_are_the_released_imagenet_sizes_and_init():
    # the release's ImageNet model: 16384 codes of 8 dims, C ~ N(0, 1/D)
    simvq = SimVQ()
    assert (simvq.codebook_size, simvq.embed_dim) == (16384, 8)
    weight = simvq.embedding.weight
    assert weight.shape == (16384, 8) and not weight.requires_grad
    # 131072 draws: the sample std is within 0.5 % of 8 ** -0.5
    assert math.isclose(weight.std().item(), 8 ** -0.5, rel_tol=0.01)
    assert abs(weight.mean().item()) < 0.01


def test_forward_metrics_are_the_batch_usage_and_perplexity():
    check_batch_usage_and_perplexity(three_codes())


def test_default_window_declares_codes_dead_after_100_steps():
    check_codes_die_after_100_steps(three_codes())


def test_stats_window_argument_sets_when_codes_die():
    check_codes_die_after_4_steps(three_codes(stats_window=4))
