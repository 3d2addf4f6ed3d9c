"""IBQ against the released module (values recorded in
released_quantizers.pt by tools/dev/compare_released.py), the blocked
straight-through softmax against the plain formula and gradcheck, and its
memory bound."""
import pytest
import torch
import torch.nn.functional as F
from released_fixture import (
    assert_matches_released,
    outputs,
    released_case,
)

from fqzoo.models.quantizers import (
    FactorizedQuantizer,
    IndexBackpropQuantizer,
    index_backprop,
)
from fqzoo.models.quantizers.ibq import blocked_entropy_loss, softmax_mean
from fqzoo.models.quantizers.search import entropy_loss


def fqzoo_ibq(module, z):
    out = module(z)
    losses = out.losses
    return out.quantized, out.indices.reshape(-1), {
        'quant': (losses['loss_ibq'] + losses['loss_commit']
                  + losses['loss_codebook']),
        'entropy': losses['loss_entropy'] / module.entropy_weight}


@pytest.mark.parametrize('block_size', [12, 2 ** 20])
def test_matches_released_ibq(block_size):
    """TencentARC/SEED-Voken ``IndexPropagationQuantize`` with its entropy
    loss (temperature 0.5): indices, quantized, the quantization loss (its
    three terms), the entropy loss and their gradients w.r.t. z and the
    codebook, in blocks (12 entries: tokens and codes split) or not."""
    case = released_case('ibq')
    k, d = case['weights']['embedding.weight'].shape
    ibq = IndexBackpropQuantizer(k, d, entropy_weight=0.05,
                                 entropy_temperature=0.5,
                                 block_size=block_size).double()
    ibq.load_state_dict(case['weights'], strict=False)
    ours = outputs(ibq.train(), fqzoo_ibq, case['z'], case['upstream'])
    assert_matches_released(case['released'], ours)


def plain_ibq(z, codebook):
    """The released formula on the full [N, K] matrix."""
    soft = F.softmax(z @ codebook.t(), dim=1)
    hard = F.one_hot(soft.argmax(1), codebook.shape[0]).to(z)
    return (hard - soft.detach() + soft) @ codebook


@pytest.mark.parametrize('block_size', [7, 300, 2 ** 20])
def test_blocked_equals_plain_formula(block_size):
    """Value and vector-Jacobian products of index_backprop equal the
    unblocked formula's (float64, 200 tokens x 333 codes)."""
    rng = torch.Generator().manual_seed(0)
    z = torch.randn(200, 6, generator=rng, dtype=torch.float64)
    codebook = torch.randn(333, 6, generator=rng, dtype=torch.float64)
    upstream = torch.randn(200, 6, generator=rng, dtype=torch.float64)
    z, codebook = z.requires_grad_(), codebook.requires_grad_()
    got, indices = index_backprop(z, codebook, block_size)
    want = plain_ibq(z, codebook)
    assert torch.equal(indices, (z @ codebook.t()).argmax(1))
    torch.testing.assert_close(got, codebook[indices], rtol=0, atol=0)
    torch.testing.assert_close(got, want)
    for g, w in zip(torch.autograd.grad(got, [z, codebook], upstream),
                    torch.autograd.grad(want, [z, codebook], upstream)):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)


def test_softmax_mean_gradcheck():
    """The blocked softmax(z E^T) V and its custom backward, float64,
    blocks of 4 entries (tokens and codes split), all three inputs."""
    rng = torch.Generator().manual_seed(1)
    z = torch.randn(5, 3, generator=rng, dtype=torch.float64)
    codebook = torch.randn(7, 3, generator=rng, dtype=torch.float64)
    values = torch.randn(7, 2, generator=rng, dtype=torch.float64)
    shift = (z @ codebook.t()).amax(1)
    inputs = [t.requires_grad_() for t in (z, codebook, values)]

    def fn(z, codebook, values):
        return softmax_mean(z, codebook, values, shift, block_size=4)

    assert torch.autograd.gradcheck(fn, inputs)
    torch.testing.assert_close(
        fn(*inputs), F.softmax(z @ codebook.t(), 1) @ values)


def test_blocked_entropy_loss_gradcheck_and_unblocked_value():
    """The released entropy loss in blocks: gradcheck (float64, blocks of 4
    entries) and equal to fqzoo's chunked VQ entropy loss (dot-product
    affinity) at the released temperature 0.01."""
    rng = torch.Generator().manual_seed(2)
    z = torch.randn(6, 3, generator=rng, dtype=torch.float64)
    codebook = torch.randn(9, 3, generator=rng, dtype=torch.float64)
    indices = (z @ codebook.t()).argmax(1)

    def fn(z, codebook):
        return blocked_entropy_loss(z, codebook, indices, 0.7, 0.8,
                                    block_size=4)

    inputs = [z.requires_grad_(), codebook.requires_grad_()]
    assert torch.autograd.gradcheck(fn, inputs)
    for temperature in (0.7, 0.01):
        got = blocked_entropy_loss(z, codebook, indices, temperature,
                                   block_size=4)
        want = entropy_loss(z, codebook, temperature, l2_norm=True)
        torch.testing.assert_close(got, want)
        for g, w in zip(torch.autograd.grad(got, inputs),
                        torch.autograd.grad(want, inputs)):
            torch.testing.assert_close(g, w)


def test_nothing_of_size_tokens_times_codes_is_saved():
    """The graph keeps only O(N D + K D) tensors for backward: no [N, K]
    softmax (the released module saves several)."""
    torch.manual_seed(0)
    n, k, d = 256, 4096, 4
    z = torch.randn(n, d, requires_grad=True)
    codebook = torch.randn(k, d, requires_grad=True)
    saved = []

    def pack(t):
        saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        q, indices = index_backprop(z, codebook, block_size=2 ** 12)
        loss = blocked_entropy_loss(z, codebook, indices, block_size=2 ** 12)
    assert saved and max(saved) <= k * d < n * k
    (q.square().sum() + loss).backward()
    assert codebook.grad.abs().sum(1).gt(0).sum() > k // 2


def test_every_code_gets_a_gradient():
    """Index backpropagation: codes never chosen still receive gradient
    (what keeps IBQ's codebook in use), unlike plain VQ."""
    torch.manual_seed(0)
    ibq = IndexBackpropQuantizer(64, 4, entropy_weight=0.0).train()
    z = 0.3 * torch.randn(2, 4, 3, 3)
    out = ibq(z)
    (out.quantized.square().sum() + sum(out.losses.values())).backward()
    unused = torch.ones(64, dtype=torch.bool)
    unused[out.indices.unique()] = False
    assert unused.sum() > 30
    assert (ibq.embedding.weight.grad[unused].abs().sum(1) > 0).all()


def test_eval_lookup_is_largest_logit_and_inverts():
    torch.manual_seed(0)
    ibq = IndexBackpropQuantizer(50, 4).eval()
    z = torch.randn(2, 4, 3, 3)
    with torch.no_grad():
        out = ibq(z)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 4)
    expected = (flat @ ibq.embedding.weight.t()).argmax(1)
    assert torch.equal(out.indices.flatten(), expected)
    assert not out.losses
    torch.testing.assert_close(ibq.embed_indices(out.indices), out.quantized)


def test_beta_on_commitment_is_vq_weighting():
    torch.manual_seed(0)
    z = torch.randn(2, 4, 3, 3)
    a = IndexBackpropQuantizer(16, 4, entropy_weight=0).train()
    b = IndexBackpropQuantizer(16, 4, entropy_weight=0,
                               beta_on_codebook=False).train()
    b.load_state_dict(a.state_dict())
    la, lb = a(z).losses, b(z).losses
    assert set(la) == {'loss_ibq', 'loss_commit', 'loss_codebook'}
    torch.testing.assert_close(la['loss_codebook'], 0.25 * la['loss_commit'])
    torch.testing.assert_close(lb['loss_commit'], 0.25 * la['loss_commit'])
    torch.testing.assert_close(lb['loss_codebook'], la['loss_commit'])
    # mse(q, z) has the value of the commitment term
    torch.testing.assert_close(la['loss_ibq'], la['loss_commit'])


def test_fq2_of_ibq_sub_quantizers():
    torch.manual_seed(0)
    fq = FactorizedQuantizer(2, dict(type='IndexBackpropQuantizer',
                                     codebook_size=32, embed_dim=4))
    z = torch.randn(2, 8, 3, 3, requires_grad=True)
    out = fq.train()(z)
    assert out.indices.shape == (2, 2, 3, 3)
    assert {'loss_ibq', 'loss_entropy'} <= set(out.losses)
    out.quantized.sum().backward()
    assert z.grad[:, :4].abs().sum() > 0 and z.grad[:, 4:].abs().sum() > 0
