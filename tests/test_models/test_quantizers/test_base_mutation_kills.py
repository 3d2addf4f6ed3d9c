"""The quantizer contract's helpers (fqzoo/models/quantizers/base.py):
behaviour that mutation testing showed no test pinned down (docs/testing.md
lists the mutants these tests kill).

References are worked out another way: losses and merged metrics by hand,
the rotation trick's gradient from ``rotate_to``'s docstring formula,
:class:`CodeUsage`'s window from its docstring (defaults 100 steps in 10
buckets: a hit counts for the last 91 to 100 steps, a code unseen for 100
steps is dead), and each contract check's message written out in full.
"""
import pytest
import torch
from torch import nn

from fqzoo.models.quantizers import (
    BaseQuantizer,
    CodeUsage,
    QuantizerOutput,
    check_quantizer_attributes,
    check_quantizer_output,
    rotate_to,
)
from fqzoo.models.quantizers.base import commitment_losses, merge_metrics


class Sign(BaseQuantizer):
    """One codebook of two codes (-1, 1) per channel of a 1-channel z."""

    codebook_size, embed_dim, in_channels = 2, 1, 1

    def forward(self, z):
        indices = (z > 0).long()
        return QuantizerOutput(indices * 2. - 1, indices)

    def embed_indices(self, indices):
        return indices * 2. - 1


def test_a_quantizer_without_a_codebook_restarts_nothing():
    sign = Sign()
    assert sign.codebook_stats() == []
    assert sign.restart_dead_codes() == 0


def test_merge_metrics_of_one_and_of_two_sub_quantizers():
    one = merge_metrics([{'usage': torch.tensor(0.25)}])
    assert one.keys() == {'usage_0', 'usage'}
    assert one['usage_0'].item() == one['usage'].item() == 0.25
    two = merge_metrics([{'usage': torch.tensor(0.25)},
                         {'usage': torch.tensor(1)}])
    assert two['usage_1'].item() == 1
    assert two['usage'].item() == 0.625


def test_commitment_weight_goes_on_the_commitment_by_default():
    """mse((1, 2), (0, 0)) = 2.5: beta 0.25 weighs loss_commit only."""
    z, q = torch.tensor([1., 2.]), torch.zeros(2)
    losses = commitment_losses(z, q, 0.25)
    assert losses['loss_commit'].item() == pytest.approx(0.625)
    assert losses['loss_codebook'].item() == pytest.approx(2.5)
    swapped = commitment_losses(z, q, 0.25, beta_on_codebook=True)
    assert swapped['loss_commit'].item() == pytest.approx(2.5)
    assert swapped['loss_codebook'].item() == pytest.approx(0.625)


def test_rotation_of_nearly_opposite_vectors_normalises_w_with_eps():
    """z = (1, 0), q = (-2, 2e-7): u + v has norm 1e-7 < eps = 1e-6, so
    w = (u + v) / 1e-6 (norm 0.1, not 1) in the docstring's gradient
    ``s (g - 2 <g, w> w + 2 <g, v> u)``, ``s = |q| / |z| = 2``."""
    z = torch.tensor([[1., 0.]], dtype=torch.float64, requires_grad=True)
    q = torch.tensor([[-2., 2e-7]], dtype=torch.float64)
    g = torch.tensor([[0., 1.]], dtype=torch.float64)
    (grad,) = torch.autograd.grad(rotate_to(z, q), z, g)
    u = torch.tensor([1., 0.], dtype=torch.float64)
    v = q[0] / q[0].norm()
    w = (u + v) / 1e-6
    assert w.norm().item() == pytest.approx(0.1, rel=1e-6)
    want = 2 * (g[0] - 2 * (g[0] @ w) * w + 2 * (g[0] @ v) * u)
    torch.testing.assert_close(grad[0], want)
    assert grad[0, 1].item() == pytest.approx(2 * 0.98, rel=1e-6)


# -------------------------------------------------------------- CodeUsage
def hits(*codes, size=4):
    return torch.bincount(torch.tensor(codes, dtype=torch.long),
                          minlength=size)


def test_code_usage_defaults_window_100_in_10_buckets():
    """Code 0 hit at step 0 only, code 1 at every step, codes 2, 3 never:
    code 0 counts in the usage for the first 100 steps and is dead 100
    steps after its hit; codes 2 and 3 are dead from step 100."""
    usage = CodeUsage(4)
    assert usage.codebook_size == 4
    assert usage.window_counts.shape == (10, 4)
    usage.update(hits(0))
    for _ in range(99):
        usage.update(hits(1))
    stats = usage.stats()
    assert stats['usage'].item() == 0.5
    assert stats['dead_codes'].item() == 2
    usage.update(hits(1))      # step 100 starts a fresh bucket
    stats = usage.stats()
    assert stats['usage'].item() == 0.25
    assert stats['dead_codes'].item() == 3


def test_code_usage_counts_exactly_beyond_float32():
    """2^24 + 1 hits of one code in one step (a big batch summed over
    processes) stay 2^24 + 1 (float32 would round to 2^24)."""
    usage = CodeUsage(2)
    usage.update(torch.tensor([2 ** 24 + 1, 3]))
    assert usage.window_counts.sum(0).tolist() == [2 ** 24 + 1, 3]


def test_code_usage_steps_exactly_past_2_to_the_24():
    """A run resumed at step 2^24 (float32 steps there are 2 apart): code
    0 hit at once is alive one step later and dead two steps later."""
    usage = CodeUsage(2, dead_after=2)
    usage.step.fill_(2 ** 24)
    alive = []
    for counts in ([1, 0], [0, 0], [0, 0]):
        usage.update(torch.tensor(counts))
        alive.append(not usage.dead_mask()[0].item())
    assert alive == [True, True, False]
    assert int(usage.step) == 2 ** 24 + 3


# ------------------------------------------------------- contract checks
class Partial(nn.Module):
    codebook_size, num_branches, num_codebooks = 8, 1, 2.0


def test_missing_contract_attributes_are_named_in_order():
    with pytest.raises(TypeError) as info:
        check_quantizer_attributes(Partial())
    assert str(info.value) == (
        'Quantizer Partial breaks the fqzoo quantizer contract: it must set '
        'the int attribute(s) num_codebooks (G, sub-codebooks per token), '
        'in_channels (channels of z)')
    check_quantizer_attributes(Sign())


Z = torch.zeros(2, 1, 4, 5)
GOOD = dict(quantized=Z, indices=torch.zeros(2, 1, 4, 5, dtype=torch.long))
PREFIX = 'Quantizer Sign breaks the fqzoo quantizer contract: '


@pytest.mark.parametrize('out,rule', [
    ((Z, GOOD['indices']), 'forward must return QuantizerOutput, got tuple'),
    (QuantizerOutput(Z[:, :, :3], GOOD['indices']),
     'quantized must have the input shape (2, 1, 4, 5), got (2, 1, 3, 5)'),
    (QuantizerOutput(Z, GOOD['indices'].int()),
     'indices must be a LongTensor [B, G, H, W] = (2, 1, 4, 5) with '
     'G=num_codebooks, got torch.int32 (2, 1, 4, 5)'),
    (QuantizerOutput(Z, torch.zeros(2, 2, 4, 5, dtype=torch.long)),
     'indices must be a LongTensor [B, G, H, W] = (2, 1, 4, 5) with '
     'G=num_codebooks, got torch.int64 (2, 2, 4, 5)'),
    (QuantizerOutput(**GOOD, losses={'commit': torch.tensor(1.)}),
     'loss key "commit" must start with "loss_"'),
    (QuantizerOutput(**GOOD, losses={'loss_x': torch.ones(2)}),
     'loss "loss_x" must be a scalar tensor'),
    (QuantizerOutput(**GOOD, metrics={'my_loss': torch.tensor(1.)}),
     'metric key "my_loss" must not contain "loss"'),
], ids=['type', 'shape', 'dtype', 'groups', 'loss-key', 'loss-vector',
        'metric-key'])
def test_broken_output_is_refused_naming_the_rule(out, rule):
    with pytest.raises(TypeError) as info:
        check_quantizer_output(Sign(), Z, out)
    assert str(info.value) == PREFIX + rule


def test_output_of_a_module_without_num_codebooks_is_refused():
    """G is unknown (None): no index shape fits."""
    with pytest.raises(TypeError) as info:
        check_quantizer_output(nn.Identity(), Z, QuantizerOutput(**GOOD))
    assert str(info.value) == (
        'Quantizer Identity breaks the fqzoo quantizer contract: indices '
        'must be a LongTensor [B, G, H, W] = (2, None, 4, 5) with '
        'G=num_codebooks, got torch.int64 (2, 1, 4, 5)')


def test_good_output_passes():
    check_quantizer_output(Sign(), Z, QuantizerOutput(
        **GOOD, losses={'loss_x': torch.tensor(1.)},
        metrics={'usage': torch.tensor(0.5)}))
