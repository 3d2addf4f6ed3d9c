"""The rotation trick (arXiv 2410.06424): the shared function against a
hand-built rotation and vector-quantize-pytorch's recorded gradients, and
as an option of VQ, FQ sub-quantizers, RVQ and SimVQ."""
import pytest
import torch
from released_fixture import (
    assert_matches_released,
    outputs,
    released_case,
)

from fqzoo.models.quantizers import (
    FactorizedQuantizer,
    ResidualVQ,
    VectorQuantizer,
    rotate_to,
)


def rotation(u, v):
    """The rotation of the plane of unit vectors u, v taking u to v (and
    the identity on its complement), built from two reflections."""
    d = u.shape[0]
    w = (u + v) / (u + v).norm()
    return torch.eye(d, dtype=u.dtype) - 2 * torch.outer(w, w) + \
        2 * torch.outer(v, u)


def test_value_is_the_code_and_gradient_is_the_scaled_rotation():
    rng = torch.Generator().manual_seed(0)
    z = torch.randn(6, 5, generator=rng, dtype=torch.float64)
    q = 3 * torch.randn(6, 5, generator=rng, dtype=torch.float64)
    g = torch.randn(6, 5, generator=rng, dtype=torch.float64)
    z.requires_grad_()
    out = rotate_to(z, q)
    assert torch.equal(out.detach(), q)
    (grad,) = torch.autograd.grad(out, z, g)
    for i in range(6):
        zi = z[i].detach()
        u, v = zi / zi.norm(), q[i] / q[i].norm()
        r = rotation(u, v)
        torch.testing.assert_close(r @ u, v)
        torch.testing.assert_close(r.t() @ r, torch.eye(5, dtype=r.dtype))
        # forward map: z -> (|q| / |z|) R z = q; gradient: (|q| / |z|) R^T g
        torch.testing.assert_close(q[i].norm() / zi.norm() * (r @ zi), q[i])
        torch.testing.assert_close(grad[i],
                                   q[i].norm() / zi.norm() * (r.t() @ g[i]))


def test_no_gradient_reaches_the_code():
    z = torch.randn(4, 3, requires_grad=True)
    q = torch.randn(4, 3, requires_grad=True)
    grads = torch.autograd.grad(rotate_to(z, q).sum(), [z, q],
                                allow_unused=True)
    assert grads[1] is None


def test_matches_vector_quantize_pytorch_rotate_to():
    """vector-quantize-pytorch ``rotate_to(src, tgt)``: same gradient to
    the source; the value equals the target (theirs to rounding)."""
    case = released_case('rotate_to')

    def forward(_, z):
        rows = z.movedim(1, -1).reshape(-1, z.shape[1])
        target = case['weights']['target']
        return rotate_to(rows, target.movedim(1, -1).reshape(rows.shape)), \
            torch.zeros(0), {}

    upstream = case['upstream'].movedim(1, -1).reshape(-1, 4)
    ours = outputs(torch.nn.Identity(), forward, case['z'], upstream)
    assert_matches_released(case['released'], ours)


def test_vq_option_matches_vector_quantize_pytorch():
    """``VectorQuantize(rotation_trick=True, learnable_codebook=True,
    ema_update=False)``: same indices, value, gradient of the output to z,
    and its commitment loss's gradients (its codebook computes in float32,
    hence the tolerance)."""
    case = released_case('vqtorch_vq_rotation')
    codes = case['weights']['codebook']
    vq = VectorQuantizer(*codes.shape, l2_norm=False, beta=1.0,
                         rotation_trick=True).double()
    vq.load_state_dict({'embedding.weight': codes}, strict=False)

    def forward(module, z):
        out = module(z)
        losses = out.losses
        return out.quantized, out.indices.reshape(-1), {
            'commit': losses['loss_commit'] + losses['loss_codebook']
            - losses['loss_codebook'].detach()}

    ours = outputs(vq.train(), forward, case['z'], case['upstream'])
    assert_matches_released(case['released'], ours, atol=1e-7)


def tokens(t):
    return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])


@pytest.mark.parametrize('l2_norm', [False, True])
def test_vq_gradient_is_rotate_to_of_its_lookup(l2_norm):
    torch.manual_seed(0)
    vq = VectorQuantizer(32, 4, l2_norm=l2_norm, rotation_trick=True).train()
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    g = torch.randn(2, 4, 3, 3)
    out = vq(z)
    (grad,) = torch.autograd.grad(out.quantized, z, g)
    z2 = z.detach().clone().requires_grad_()
    flat = tokens(z2)
    if l2_norm:
        flat = torch.nn.functional.normalize(flat, dim=-1)
    codes = vq.codebook().detach()[out.indices.flatten()]
    (want,) = torch.autograd.grad(rotate_to(flat, codes), z2, tokens(g))
    torch.testing.assert_close(grad, want)
    plain = VectorQuantizer(32, 4, l2_norm=l2_norm).train()
    plain.load_state_dict(vq.state_dict())
    (ste,) = torch.autograd.grad(plain(z).quantized, z, g)
    assert not torch.allclose(grad, ste)


def test_fq_sub_quantizers_take_it_from_their_config():
    torch.manual_seed(0)
    fq = FactorizedQuantizer(2, dict(type='VectorQuantizer', codebook_size=16,
                                     embed_dim=4, l2_norm=False,
                                     rotation_trick=True)).train()
    z = torch.randn(1, 8, 2, 2, requires_grad=True)
    out = fq(z)
    g = torch.randn_like(z)
    (grad,) = torch.autograd.grad(out.quantized, z, g)
    for i in range(2):
        part = z[:, 4 * i:4 * i + 4].detach().requires_grad_()
        codes = tokens(out.branches[i].detach())
        (want,) = torch.autograd.grad(rotate_to(tokens(part), codes), part,
                                      tokens(g[:, 4 * i:4 * i + 4]))
        torch.testing.assert_close(grad[:, 4 * i:4 * i + 4], want)


def test_rvq_rotates_z_onto_the_sum_of_its_levels():
    torch.manual_seed(0)
    level = dict(type='VectorQuantizer', codebook_size=16, embed_dim=4,
                 l2_norm=False)
    rvq = ResidualVQ(3, level, rotation_trick=True).train()
    z = torch.randn(1, 4, 2, 3, requires_grad=True)
    g = torch.randn_like(z)
    out = rvq(z)
    torch.testing.assert_close(out.quantized.detach(),
                               rvq.embed_indices(out.indices))
    (grad,) = torch.autograd.grad(out.quantized, z, g)
    z2 = z.detach().requires_grad_()
    (want,) = torch.autograd.grad(
        rotate_to(tokens(z2), tokens(out.quantized.detach())), z2, tokens(g))
    torch.testing.assert_close(grad, want)


def test_rvq_refuses_rotation_trick_in_its_level_config():
    with pytest.raises(ValueError, match='ResidualVQ\\(rotation_trick=True\\)'):
        ResidualVQ(2, dict(type='VectorQuantizer', codebook_size=8,
                           embed_dim=4, rotation_trick=True))
