import pytest
import torch
from mmengine.logging import MessageHub
from tokenizer_reference import (
    codes_by_hand,
    reconstruct_by_hand,
    sub_quantizers,
)

from fqzoo.engine import TokenizerOptimWrapperConstructor
from fqzoo.models.quantizers import QuantizerOutput
from fqzoo.registry import MODELS, QUANTIZERS


def tiny_cfg(**kwargs):
    cfg = dict(
        type='ImageTokenizer',
        encoder=dict(type='VQGANEncoder', ch=8, ch_mult=(1, 2),
                     num_res_blocks=1, z_channels=8),
        decoder=dict(type='VQGANDecoder', ch=8, ch_mult=(1, 2),
                     num_res_blocks=1, z_channels=8),
        quantizer=dict(type='VectorQuantizer', codebook_size=32, embed_dim=4),
        discriminator=dict(type='PatchGANDiscriminator', ndf=8, num_layers=2),
        disc_start=2)
    cfg.update(kwargs)
    return cfg


def optim_wrappers(model):
    opt = dict(optimizer=dict(type='Adam', lr=1e-3))
    return TokenizerOptimWrapperConstructor(
        dict(autoencoder=opt, discriminator=opt))(model)


def images(n=4, size=16):
    rng = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, size, size, generator=rng) * 2 - 1


FQ_CFG = dict(
    quantizer=dict(type='FactorizedQuantizer', num_codebooks=2,
                   quantizer=dict(type='VectorQuantizer', codebook_size=32,
                                  embed_dim=4)),
    heads=[dict(type='ConvBranchHead', in_channels=8, out_channels=6,
                num_groups=2),
           dict(type='ConvBranchHead', in_channels=8, num_groups=2)])


@pytest.mark.parametrize('extra', [{}, FQ_CFG], ids=['vq', 'fq_two_heads'])
def test_encode_decode_reconstruct_match_modules_run_by_hand(extra):
    """encode / decode / reconstruct / forward against the modules run one
    by one with a direct cdist argmin per sub-codebook
    (tests/tokenizer_reference.py)."""
    model = MODELS.build(tiny_cfg(**extra)).eval()
    x = images()
    recon, expected = reconstruct_by_hand(model, x)
    groups = len(expected[0])
    assert expected.shape == (4, groups, 8, 8)
    assert all(expected[:, g].unique().numel() > 1 for g in range(groups))
    idx = model.encode(x)
    assert idx.dtype == torch.long and torch.equal(idx, expected)
    torch.testing.assert_close(model.decode(idx), recon)
    torch.testing.assert_close(model.reconstruct(x), recon)
    torch.testing.assert_close(model(x), recon)
    # per-branch: the quantized branch maps are the cdist-nearest codes
    qout = model.quantize(x)
    for g, branch in enumerate(qout.branches):
        vq = sub_quantizers(model)[g]
        codes = torch.nn.functional.normalize(vq.embedding.weight, dim=-1)
        torch.testing.assert_close(
            branch, codes[expected[:, g]].permute(0, 3, 1, 2))


@pytest.mark.parametrize('quantizer', [
    dict(type='BSQ', embed_dim=6),
    dict(type='FactorizedQuantizer', num_codebooks=2,
         quantizer=dict(type='BSQ', embed_dim=3)),
], ids=['bsq', 'fq_bsq'])
def test_bsq_tokenizer_matches_sign_bits_by_hand(quantizer):
    """A BSQ tokenizer's tokens are the sign bits of the unit latent (first
    channel most significant) and its images decode the +-1/sqrt(D) codes
    (tests/tokenizer_reference.py)."""
    model = MODELS.build(tiny_cfg(quantizer=quantizer)).eval()
    x = images()
    recon, expected = reconstruct_by_hand(model, x)
    groups = model.quantizer.num_codebooks
    assert all(expected[:, g].unique().numel() > 4 for g in range(groups))
    idx = model.encode(x)
    assert torch.equal(idx, expected)
    torch.testing.assert_close(model.decode(idx), recon)
    torch.testing.assert_close(model.reconstruct(x), recon)
    # the codes lie on the unit sphere of each branch
    for branch in model.quantize(x).branches:
        torch.testing.assert_close(branch.norm(dim=1),
                                   torch.ones(4, 8, 8))


@pytest.mark.parametrize('quantizer', [
    dict(type='VectorQuantizer', codebook_size=8, embed_dim=4),
    dict(type='IndexBackpropQuantizer', codebook_size=8, embed_dim=4),
    dict(type='FactorizedQuantizer', num_codebooks=2, quantizer=dict(
        type='VectorQuantizer', codebook_size=8, embed_dim=2)),
], ids=lambda q: q['type'])
def test_reference_keeps_the_tokenizers_pick_only_at_a_near_tie(quantizer):
    """The by-hand reference takes the tokenizer's index where it is a
    float32 near-tie (code 5 a copy of code 3, or 1e-7 shorter) and its own
    argmin anywhere else, so a wrong pick still fails the comparison."""
    quantizer = QUANTIZERS.build(quantizer)
    subs = list(getattr(quantizer, 'subs', [quantizer]))
    rng = torch.Generator().manual_seed(0)
    for sub in subs:
        with torch.no_grad():
            weight = sub.embedding.weight
            # unit codes: for IBQ's argmax of z E^T too, a code is its own
            # best match
            weight.copy_(torch.nn.functional.normalize(
                torch.randn(weight.shape, generator=rng), dim=1))
            weight[5] = weight[3] * (1 - 1e-7 * (sub is subs[0]))
    # row 0 right on code 3 of each sub-codebook (its twin 5 ties), row 1
    # on code 1 (no twin)
    rows = torch.cat([torch.stack([sub.embedding.weight[3].detach(),
                                   sub.embedding.weight[1].detach()])
                      for sub in subs], dim=1).double()
    _, own = codes_by_hand(rows, quantizer)
    groups = len(subs)
    assert torch.equal(own, torch.tensor([[3] * groups, [1] * groups]))
    twin = torch.tensor([[5] * groups, [1] * groups])
    _, kept = codes_by_hand(rows, quantizer, picks=twin)
    assert torch.equal(kept, twin)
    wrong = torch.tensor([[5] * groups, [2] * groups])
    _, refused = codes_by_hand(rows, quantizer, picks=wrong)
    assert torch.equal(refused, twin)


def test_loss_mode_backpropagates_to_encoder():
    model = MODELS.build(tiny_cfg())
    losses = model(images(), mode='loss')
    assert {'loss_rec', 'loss_codebook', 'loss_commit'} <= set(losses)
    sum(losses.values()).backward()
    assert model.encoder.conv_in.weight.grad.abs().sum() > 0
    assert model.quantizer.embedding.weight.grad.abs().sum() > 0


def test_invalid_mode():
    with pytest.raises(RuntimeError, match='Invalid mode "foo"'):
        MODELS.build(tiny_cfg())(images(), mode='foo')


def test_predict_outputs_per_sample_dicts():
    out = MODELS.build(tiny_cfg()).val_step(dict(inputs=images(2)))
    assert len(out) == 2
    assert out[0]['recon'].shape == (3, 16, 16)
    assert out[0]['indices'].shape == (1, 8, 8)
    assert out[0]['codebook_size'] == 32
    assert out[0]['recon'].abs().max() <= 1


@pytest.mark.parametrize('adaptive', [False, True])
def test_gan_train_step_respects_disc_start(adaptive):
    model = MODELS.build(tiny_cfg(adaptive_disc_weight=adaptive))
    wrappers = optim_wrappers(model)
    hub = MessageHub.get_current_instance()
    data = dict(inputs=images())
    for it in range(4):
        hub.update_info('iter', it)
        disc_before = [p.detach().clone() for p in model.discriminator.parameters()]
        enc_before = model.encoder.conv_in.weight.detach().clone()
        log = model.train_step(data, wrappers)
        disc_changed = any(not torch.equal(a, b) for a, b in
                           zip(disc_before, model.discriminator.parameters()))
        assert not torch.equal(enc_before, model.encoder.conv_in.weight)
        assert disc_changed == (it >= 2)
        assert ('loss_adv' in log) == (it >= 2)
        assert ('loss_disc' in log) == (it >= 2)
        assert all(torch.isfinite(torch.as_tensor(v)) for v in log.values())


def test_autoencoder_step_leaves_no_grad_on_discriminator():
    model = MODELS.build(tiny_cfg(disc_start=0))
    wrappers = optim_wrappers(model)
    MessageHub.get_current_instance().update_info('iter', 5)
    model.train_step(dict(inputs=images()), wrappers)
    # the discriminator step zeroes its grads after stepping; the
    # autoencoder step must not have left gradients on it either
    assert all(p.grad is None or p.grad.abs().sum() == 0
               for p in model.discriminator.parameters())
    assert all(p.requires_grad for p in model.discriminator.parameters())


def test_optimizers_cover_disjoint_parameters():
    model = MODELS.build(tiny_cfg())
    wrappers = optim_wrappers(model)
    ae = {id(p) for g in wrappers['autoencoder'].param_groups for p in g['params']}
    disc = {id(p) for g in wrappers['discriminator'].param_groups for p in g['params']}
    assert disc == {id(p) for p in model.discriminator.parameters()}
    assert not ae & disc
    assert ae | disc == {id(p) for p in model.parameters()}


@QUANTIZERS.register_module(force=True)
class _BrokenQuantizer(torch.nn.Module):
    num_codebooks, codebook_size, embed_dim, in_channels, num_branches = 1, 4, 4, 4, 1

    def forward(self, z):
        return QuantizerOutput(z, torch.zeros(z.shape[0], z.shape[2], z.shape[3],
                                              dtype=torch.long))


def test_contract_violation_is_named_at_first_forward():
    model = MODELS.build(tiny_cfg(quantizer=dict(type='_BrokenQuantizer')))
    with pytest.raises(TypeError, match=r'indices must be a LongTensor \[B, G, H, W\]'):
        model(images())
