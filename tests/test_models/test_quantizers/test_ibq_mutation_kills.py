"""IndexBackpropQuantizer behaviour that mutation testing showed no test
pinned down (docs/testing.md lists the mutants these tests kill).

References are worked out another way: the blocked functions against the
plain ``[N, K]`` formulas in float64 (``softmax(z E^T) V``, the entropy
loss ``mean H(p_n) - w H(mean p_n)`` with ``H(a) = -sum a log(a + eps)``
for the mean) and ``torch.autograd`` on them; the tiling of the ``[tokens,
codes]`` matrix by hand from the module's rule (rows: all tokens, at most
4096 and at most ``block_size``; columns: as many codes as fit in
``block_size`` entries), read off the matrix products actually run; the
defaults from the class docstring; a one-dimensional IBQ with the codes
-1, 0, 1 picks its code by hand (``z << 0``: code 0, ``z >> 0``: code 2).
"""
import math

import pytest
import torch
import torch.nn.functional as F
from three_code_checks import (
    check_batch_usage_and_perplexity,
    check_codes_die_after_4_steps,
    check_codes_die_after_100_steps,
)
from torch.utils._python_dispatch import TorchDispatchMode

import fqzoo.models.quantizers.ibq as ibq_module
from fqzoo.models.quantizers import IndexBackpropQuantizer, index_backprop
from fqzoo.models.quantizers.ibq import blocked_entropy_loss, softmax_mean

aten = torch.ops.aten
# the out-of-place matrix products of the blocked functions: each output is
# one [tokens, codes] block (in-place addmm_ accumulates gradients)
BLOCK_OPS = (aten.mm.default, aten.addmm.default)


class Recorder(TorchDispatchMode):
    """Shapes of the blocks (:data:`BLOCK_OPS` outputs) and of the tensors
    ``zeros_like`` allocates, forward and backward; nothing while
    ``paused`` (the code search, which has its own blocks)."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks, self.zeros, self.paused = [], [], False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not self.paused and func in BLOCK_OPS:
            self.blocks.append(tuple(out.shape))
        if not self.paused and func is aten.zeros_like.default:
            self.zeros.append(tuple(out.shape))
        return out


@pytest.fixture
def recorder(monkeypatch):
    """A Recorder that does not see :func:`nearest_code` (IBQ's search)."""
    rec = Recorder()
    search = ibq_module.nearest_code

    def unrecorded(*args, **kwargs):
        rec.paused = True
        try:
            return search(*args, **kwargs)
        finally:
            rec.paused = False

    monkeypatch.setattr(ibq_module, 'nearest_code', unrecorded)
    return rec


def randn(*shape, seed=0, dtype=torch.float64):
    rng = torch.Generator().manual_seed(seed + sum(shape))
    return torch.randn(*shape, generator=rng, dtype=dtype)


def plain_softmax_mean(z, codebook, values):
    return F.softmax(z @ codebook.t(), dim=1) @ values


def plain_entropy(z, codebook, temperature, batch_weight, eps=1e-5):
    probs = F.softmax(z @ codebook.t() / temperature, dim=1)
    sample = -(probs * probs.log()).sum(1).mean()
    mean = probs.mean(0)
    return sample + batch_weight * (mean * torch.log(mean + eps)).sum()


# (tokens N, codes K, block_size, the blocks by hand)
TILINGS = [
    (6, 5, 30, [(6, 5)]),  # the whole matrix fits: one block
    (3, 10, 12, [(3, 4), (3, 4), (3, 2)]),  # all tokens, 12 // 3 codes
    (5, 2, 1, [(1, 1)] * 10),  # one entry a block
    (4100, 2, 2 ** 20, [(4096, 2), (4, 2)]),  # at most 4096 tokens
]


@pytest.mark.parametrize('n,k,block_size,tiling', TILINGS)
def test_softmax_mean_blocks_and_values(recorder, n, k, block_size,
                                        tiling):
    """Forward makes each block once, backward twice (probabilities and
    the dots <g, v_k>); value and gradients are the plain formula's."""
    z, codebook, values, upstream = (randn(n, 2), randn(k, 2, seed=1),
                                     randn(k, 3, seed=2), randn(n, 3))
    inputs = [t.requires_grad_() for t in (z, codebook, values)]
    shift = (z @ codebook.t()).amax(1).detach()
    with recorder:
        got = softmax_mean(z, codebook, values, shift, block_size)
        grads = torch.autograd.grad(got, inputs, upstream)
    assert sorted(recorder.blocks) == sorted(tiling * 3)
    want = plain_softmax_mean(*inputs)
    torch.testing.assert_close(got, want)
    for g, w in zip(grads, torch.autograd.grad(want, inputs, upstream)):
        torch.testing.assert_close(g, w)


@pytest.mark.parametrize('n,k,block_size,tiling', TILINGS)
def test_entropy_loss_blocks_and_values(recorder, n, k, block_size, tiling):
    """Two passes over the blocks forward (normalisers, then entropies),
    two backward (centres, then gradients); value and gradients are the
    plain formula's."""
    z, codebook = randn(n, 2), randn(k, 2, seed=1)
    inputs = [z.requires_grad_(), codebook.requires_grad_()]
    indices = (z @ codebook.t()).argmax(1)
    with recorder:
        got = blocked_entropy_loss(z, codebook, indices, 0.7, 0.8,
                                   block_size=block_size)
        grads = torch.autograd.grad(got, inputs)
    assert sorted(recorder.blocks) == sorted(tiling * 4)
    want = plain_entropy(z, codebook, 0.7, 0.8)
    torch.testing.assert_close(got, want)
    for g, w in zip(grads, torch.autograd.grad(want, inputs)):
        torch.testing.assert_close(g, w)


def test_softmax_mean_gradient_to_the_values_alone():
    """Only ``values`` needs a gradient: ``softmax(z E^T)^T g``, summed
    over every code block (blocks of 4 entries: 2 tokens x 2 codes)."""
    z, codebook, upstream = randn(5, 3), randn(7, 3, seed=1), randn(5, 2)
    values = randn(7, 2, seed=2).requires_grad_()
    shift = (z @ codebook.t()).amax(1)
    got = softmax_mean(z, codebook, values, shift, block_size=4)
    (grad,) = torch.autograd.grad(got, values, upstream)
    probs = F.softmax(z @ codebook.t(), dim=1)
    torch.testing.assert_close(grad, probs.t() @ upstream)


@pytest.mark.parametrize('wanted', ['z', 'codebook', 'values'])
def test_softmax_mean_backward_allocates_only_wanted_gradients(recorder,
                                                               wanted):
    """No gradient buffer for an input that needs none: in IBQ the values
    are the detached codebook, which would cost a [K, D] zero tensor per
    step."""
    tensors = {'z': randn(6, 2), 'codebook': randn(5, 2, seed=1),
               'values': randn(5, 3, seed=2)}
    tensors[wanted].requires_grad_()
    shift = (tensors['z'] @ tensors['codebook'].t()).amax(1).detach()
    out = softmax_mean(*tensors.values(), shift, block_size=4)
    with recorder:
        torch.autograd.grad(out.sum(), tensors[wanted])
    assert recorder.zeros == [tuple(tensors[wanted].shape)]


@pytest.mark.parametrize('wanted', ['z', 'codebook'])
def test_entropy_backward_allocates_only_wanted_gradients(recorder,
                                                          wanted):
    tensors = {'z': randn(6, 2), 'codebook': randn(5, 2, seed=1)}
    tensors[wanted].requires_grad_()
    indices = (tensors['z'] @ tensors['codebook'].t()).argmax(1)
    loss = blocked_entropy_loss(*tensors.values(), indices, 0.7,
                                block_size=4)
    with recorder:
        torch.autograd.grad(loss, tensors[wanted])
    # the other zeros_like is the [N] centre of each row
    assert [s for s in recorder.zeros if len(s) == 2] == [
        tuple(tensors[wanted].shape)]


def test_entropy_floor_is_e_times_the_smallest_normal():
    """A probability below ``e * tiny`` counts as ``e * tiny`` in the
    per-token entropy (float32; logits 0 and -87, so log p = -87 < log
    tiny + 1 = -86.34), one above it is kept."""
    z = torch.ones(2, 1)
    codebook = torch.tensor([[0.], [-87.]])
    loss = blocked_entropy_loss(z[:1], codebook, torch.tensor([0]), 1.0,
                                batch_weight=0.0)
    p = math.e * torch.finfo(torch.float32).tiny
    assert loss.item() == pytest.approx(-p * math.log(p), rel=1e-5, abs=0)
    codebook = torch.tensor([[0.], [-80.]])
    loss = blocked_entropy_loss(z[:1], codebook, torch.tensor([0]), 1.0,
                                batch_weight=0.0)
    want = 80 * math.exp(-80)
    assert loss.item() == pytest.approx(want, rel=1e-5, abs=0)


EYE_TOKENS = torch.eye(2).view(1, 2, 1, 2)  # the tokens e0 and e1


def test_entropy_loss_default_temperature_and_batch_weight():
    """Codes e0, e1 and one token on each (float32): at the default
    T = 0.01 each token's softmax is one-hot (logits 100 and 0), the mean
    is (1/2, 1/2), so the loss is 0 - H(mean) = log(1/2 + 1e-5); T = 1.01
    would give -0.11."""
    z = torch.eye(2)
    loss = blocked_entropy_loss(z, torch.eye(2), torch.tensor([0, 1]))
    assert loss.item() == pytest.approx(math.log(0.5 + 1e-5), abs=1e-6)


def eye_ibq(**kwargs) -> IndexBackpropQuantizer:
    ibq = IndexBackpropQuantizer(2, 2, **kwargs).train()
    with torch.no_grad():
        ibq.embedding.weight.copy_(torch.eye(2))
    return ibq


def test_default_entropy_weight_and_temperature():
    """The docstring's 0.05 and 0.01 on the case above."""
    loss = eye_ibq()(EYE_TOKENS).losses['loss_entropy']
    assert loss.item() == pytest.approx(0.05 * math.log(0.5 + 1e-5),
                                        abs=1e-7)


def test_entropy_batch_weight_reaches_the_loss():
    """T = 1: each token's softmax is (e, 1) / (e + 1) over its own code
    and the other, the mean is (1/2, 1/2); batch weight 0.5."""
    ibq = eye_ibq(entropy_weight=1.0, entropy_temperature=1.0,
                  entropy_batch_weight=0.5)
    p = math.e / (math.e + 1)
    sample = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    want = sample + 0.5 * math.log(0.5 + 1e-5)
    loss = ibq(EYE_TOKENS).losses['loss_entropy']
    assert loss.item() == pytest.approx(want, rel=1e-5)


def test_entropy_loss_runs_in_full_precision_under_autocast():
    """float32 inputs, inside and outside a bfloat16 autocast region: the
    loss and its gradients are the float64 formula's to float32 accuracy
    (a bfloat16 matmul is off by about 1e-2)."""
    z, codebook = randn(6, 4, dtype=torch.float32), randn(
        9, 4, seed=1, dtype=torch.float32)
    indices = (z @ codebook.t()).argmax(1)
    inputs = [z.requires_grad_(), codebook.requires_grad_()]
    ref = [t.detach().double().requires_grad_() for t in inputs]
    want = plain_entropy(*ref, 0.5, 1.0)
    want_grads = torch.autograd.grad(want, ref)
    for autocast in (False, True):
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
            got = blocked_entropy_loss(z, codebook, indices, 0.5,
                                       block_size=8)
        grads = torch.autograd.grad(got, inputs)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got.double(), want, rtol=1e-5,
                                   atol=1e-5)
        for g, w in zip(grads, want_grads):
            torch.testing.assert_close(g.double(), w, rtol=1e-4, atol=1e-5)


def test_bfloat16_tokens_with_a_float32_codebook():
    """Mixed precision: the encoder's bfloat16 output against float32
    codes is computed in float32 (the codebook's dtype), for the entropy
    loss and the straight-through."""
    z = randn(6, 4, dtype=torch.float32).bfloat16().requires_grad_()
    codebook = randn(9, 4, seed=1, dtype=torch.float32).requires_grad_()
    ref_z, ref_codes = (t.detach().double().requires_grad_()
                        for t in (z, codebook))
    indices = (ref_z @ ref_codes.t()).argmax(1)
    loss = blocked_entropy_loss(z, codebook, indices, 0.5, block_size=8)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(),
                               plain_entropy(ref_z, ref_codes, 0.5, 1.0),
                               rtol=1e-5, atol=1e-5)
    quantized, got_indices = index_backprop(z, codebook, block_size=8)
    assert torch.equal(got_indices, indices)
    assert torch.equal(quantized, codebook[indices])
    upstream = randn(6, 4, seed=2)
    quantized.backward(upstream.float())
    soft = F.softmax(ref_z @ ref_codes.t(), dim=1)
    hard = F.one_hot(indices, 9).double()
    ((hard - soft.detach() + soft) @ ref_codes).backward(upstream)
    assert z.grad.dtype == torch.bfloat16
    torch.testing.assert_close(z.grad.double(), ref_z.grad, rtol=1e-2,
                               atol=1e-2)
    torch.testing.assert_close(codebook.grad.double(), ref_codes.grad,
                               rtol=1e-4, atol=1e-5)


def test_block_size_reaches_every_blocked_computation(recorder):
    """``block_size=4``: index_backprop's straight-through and the
    quantizer's straight-through and entropy loss, forward and backward,
    never form a block of more than 4 entries (6 tokens, 7 codes)."""
    z = randn(6, 2).requires_grad_()
    codebook = randn(7, 2, seed=1).requires_grad_()
    with recorder:
        quantized, _ = index_backprop(z, codebook, block_size=4)
        quantized.sum().backward()
    assert recorder.blocks and max(a * b for a, b in recorder.blocks) <= 4
    recorder.blocks.clear()
    torch.manual_seed(0)
    ibq = IndexBackpropQuantizer(7, 2, block_size=4).train()
    with recorder:
        out = ibq(randn(1, 2, 2, 3).requires_grad_())
        (out.quantized.sum() + sum(out.losses.values())).backward()
    # 4 + 2 tokens x 7 codes: 14 blocks a pass; straight-through: 1 pass
    # forward, 2 backward; entropy: 2 and 2
    assert len(recorder.blocks) == 14 * (1 + 2 + 2 + 2)
    assert max(a * b for a, b in recorder.blocks) <= 4


def test_no_softmax_when_no_gradient_is_wanted(recorder):
    """The straight-through term is zero in value: under no_grad, or with
    a frozen codebook and a latent that needs no gradient, the quantizer
    runs no [tokens, codes] block besides the search."""
    torch.manual_seed(0)
    ibq = IndexBackpropQuantizer(7, 2).eval()
    z = randn(1, 2, 2, 3)
    with recorder, torch.no_grad():
        ibq(z)
    assert recorder.blocks == []
    ibq.embedding.weight.requires_grad_(False)
    with recorder:
        ibq(z)
    assert recorder.blocks == []
    ibq.embedding.weight.requires_grad_(True)
    with recorder:
        ibq(z)
    assert recorder.blocks == [(6, 7)]


def test_defaults_are_16384_codes_of_256_dims():
    ibq = IndexBackpropQuantizer()
    assert (ibq.codebook_size, ibq.embed_dim, ibq.in_channels) == (
        16384, 256, 256)
    assert ibq.embedding.weight.shape == (16384, 256)


def three_codes(**kwargs) -> IndexBackpropQuantizer:
    """Codes -1, 0, 1 in one dimension: the largest logit z e_k picks code
    0 for z < 0 and code 2 for z > 0."""
    ibq = IndexBackpropQuantizer(3, 1, **kwargs)
    with torch.no_grad():
        ibq.embedding.weight.copy_(torch.tensor([[-1.], [0.], [1.]]))
    return ibq


def test_batch_usage_and_perplexity():
    check_batch_usage_and_perplexity(three_codes())


def test_default_stats_window_is_100_steps():
    check_codes_die_after_100_steps(three_codes())


def test_stats_window_is_used():
    check_codes_die_after_4_steps(three_codes(stats_window=4))


def test_eval_losses_are_an_empty_dict():
    with torch.no_grad():
        out = three_codes().eval()(torch.ones(1, 1, 2, 2))
    assert out.losses == {} and isinstance(out.losses, dict)


def test_quantized_comes_back_in_the_latent_dtype():
    """A bfloat16 latent (autocast) against the float32 codebook."""
    z = torch.tensor([-3., 2., 5., -1.]).view(1, 1, 2, 2).bfloat16()
    with torch.no_grad():
        out = three_codes().eval()(z)
    assert out.quantized.dtype == torch.bfloat16
    assert out.quantized.flatten().tolist() == [-1., 1., 1., -1.]
