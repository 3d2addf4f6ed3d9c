"""ImageTokenizer behaviour that mutation testing showed no test pinned
down (docs/testing.md lists the mutants these tests kill).

References are worked out another way: the defaults are the class
docstring's (L2 reconstruction of weight 1, perceptual weight 1, a hinge
GAN from iteration 0 at the fixed weight 0.5), the losses are hand
formulas on the model as it was before the step, the token layout is
written out from the encoder's downsample factor and the codebooks, and
the error messages are the ones the user reads.
"""
import copy
import uuid

import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmengine.model import BaseDataPreprocessor
from test_train_step_values import ToyPerceptual
from torch import nn

import fqzoo.models.tokenizers.image_tokenizer as tokenizer_module
from fqzoo.engine import TokenizerOptimWrapperConstructor
from fqzoo.models.quantizers import QuantizerOutput
from fqzoo.registry import MODEL_WRAPPERS, MODELS, QUANTIZERS, REGULARIZERS

LR = 0.1


@REGULARIZERS.register_module(name='_ProbeRegularizer', force=True)
class ProbeRegularizer(nn.Module):
    """``loss_probe = mean(quantized) + 10 * mean(images)``; reads
    ``branch`` when given one."""

    def __init__(self, branch=None) -> None:
        super().__init__()
        if branch is not None:
            self.branch = branch

    def forward(self, qout, images):
        return {'loss_probe': qout.quantized.mean() + 10 * images.mean()}


@QUANTIZERS.register_module(name='_FiveChannelTwoBranches', force=True)
class FiveChannelTwoBranches(nn.Module):
    """Declares 5 input channels for 2 branches (never run)."""
    num_codebooks, codebook_size, embed_dim = 2, 4, 5
    in_channels, num_branches = 5, 2


class FlipWhenTraining(BaseDataPreprocessor):
    """Mirrors the images left-right when called for training only."""

    def forward(self, data, training=False):
        data = self.cast_data(data)
        if training:
            data = dict(data, inputs=data['inputs'].flip(-1))
        return data


VQ = dict(type='VectorQuantizer', codebook_size=16, embed_dim=4)
FQ = dict(type='FactorizedQuantizer', num_codebooks=2,
          quantizer=dict(type='VectorQuantizer', codebook_size=8,
                         embed_dim=4))


def tiny(**kwargs):
    """A tiny tokenizer: downsample factor 2, 8 trunk channels."""
    torch.manual_seed(0)
    cfg = dict(
        type='ImageTokenizer',
        encoder=dict(type='VQGANEncoder', ch=8, ch_mult=(1, 2),
                     num_res_blocks=1, z_channels=8),
        decoder=dict(type='VQGANDecoder', ch=8, ch_mult=(1, 2),
                     num_res_blocks=1, z_channels=8),
        quantizer=VQ)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def wrappers_for(model):
    opt = dict(optimizer=dict(type='SGD', lr=LR))
    cfgs = dict(autoencoder=opt)
    if model.discriminator is not None:
        cfgs['discriminator'] = opt
    return TokenizerOptimWrapperConstructor(cfgs)(model)


def images(n=2, height=16, width=16, seed=1):
    rng = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, height, width, generator=rng) * 2 - 1


def step(model, it, x=None):
    """One ``train_step`` at iteration ``it``: the log and the model as it
    was before the step."""
    before = copy.deepcopy(model)
    MessageHub.get_current_instance().update_info('iter', it)
    x = images() if x is None else x
    return model.train_step(dict(inputs=x), wrappers_for(model)), before


def recon_of(model, x):
    with torch.no_grad():
        return model.decode_quantized(model.quantize(x).quantized)


def disc_logits(model, x):
    with torch.no_grad():
        return model.discriminator(x)


# ------------------------------------------------------------- defaults
def test_defaults_are_the_docstrings():
    """Without options: ``loss_rec`` is the plain L2 mean (weight 1),
    ``loss_perceptual`` the perceptual mean (weight 1), and from iteration
    0 (``disc_start=0``) ``loss_adv`` is ``0.5 * -mean D(recon)``: the
    hinge generator loss at the fixed weight ``disc_weight=0.5``."""
    model = tiny(discriminator=dict(type='PatchGANDiscriminator', ndf=8,
                                    num_layers=2),
                 perceptual_loss=ToyPerceptual())
    assert model.rec_loss == 'l2' and model.gan_loss == 'hinge'
    assert model.adaptive_disc_weight is False
    x = images()
    log, before = step(model, 0, x)
    recon = recon_of(before, x)
    torch.testing.assert_close(log['loss_rec'], ((recon - x)**2).mean())
    torch.testing.assert_close(log['loss_perceptual'],
                               before.perceptual_loss(recon, x).mean())
    g = -disc_logits(before, recon).mean()
    torch.testing.assert_close(log['loss_adv'], 0.5 * g)
    assert 'loss_disc' in log


def test_adversarial_weight_defaults_to_a_fixed_half():
    model = tiny()
    g = torch.tensor(3.0)
    weight = model._adversarial_weight(torch.tensor(1.0), g)
    assert weight.item() == 0.5 and weight.device == g.device


# ------------------------------------------------- constructor options
def test_unknown_rec_loss_is_refused_by_name():
    with pytest.raises(ValueError,
                       match='rec_loss must be "l1" or "l2", got "l3"'):
        tiny(rec_loss='l3')


@pytest.mark.parametrize('kind', ['l1', 'l2'])
def test_rec_loss_l1_or_l2_by_hand(kind):
    model = tiny(rec_loss=kind, rec_weight=1.5)
    x = images()
    losses = model(x, mode='loss')
    recon = recon_of(model, x)
    diff = recon - x
    expected = diff.abs().mean() if kind == 'l1' else (diff**2).mean()
    torch.testing.assert_close(losses['loss_rec'].detach(), 1.5 * expected)


def test_in_channels_not_divisible_by_branches_is_named():
    with pytest.raises(ValueError,
                       match='FiveChannelTwoBranches: in_channels 5 is not '
                       'divisible by num_branches 2'):
        tiny(quantizer=dict(type='_FiveChannelTwoBranches'))


def test_head_count_other_than_branches_is_named():
    head = dict(type='ConvBranchHead', in_channels=8, num_groups=2)
    with pytest.raises(ValueError,
                       match=r'3 branch heads given for quantizer '
                       r'FactorizedQuantizer with 2 branches \(num_branches\)'
                       r': give one head for all or one per branch'):
        tiny(quantizer=FQ, heads=[head] * 3)


def test_data_preprocessor_is_used_for_training():
    """The given data preprocessor prepares the batch, called with
    ``training=True`` by ``train_step``: the reconstruction loss is that of
    the mirrored images."""
    model = tiny(data_preprocessor=FlipWhenTraining())
    assert isinstance(model.data_preprocessor, FlipWhenTraining)
    x = images()
    log, before = step(model, 0, x)
    flipped = x.flip(-1)
    recon = recon_of(before, flipped)
    torch.testing.assert_close(log['loss_rec'],
                               ((recon - flipped)**2).mean())


def test_init_cfg_is_applied_by_init_weights():
    model = tiny(init_cfg=dict(type='Constant', layer='Conv2d', val=0.05,
                               bias=0.01))
    model.init_weights()
    for conv in (model.post_quant_conv, *model.quant_convs):
        assert torch.all(conv.weight == 0.05)
        assert torch.all(conv.bias == 0.01)


# ----------------------------------------------------------- regularizers
def test_regularizer_reads_quantizer_output_and_images():
    model = tiny(regularizers=[dict(type='_ProbeRegularizer')])
    x = images()
    losses = model(x, mode='loss')
    with torch.no_grad():
        expected = model.quantize(x).quantized.mean() + 10 * x.mean()
    torch.testing.assert_close(losses['loss_probe'].detach(), expected)


@pytest.mark.parametrize('branch', [None, 0, 1])
def test_regularizer_branch_in_range_is_accepted(branch):
    model = tiny(quantizer=FQ,
                 regularizers=[dict(type='_ProbeRegularizer', branch=branch)])
    assert len(model.regularizers) == 1


@pytest.mark.parametrize('branch', [2, -1])
def test_regularizer_branch_out_of_range_is_named(branch):
    with pytest.raises(ValueError,
                       match=rf'ProbeRegularizer reads branch {branch}, but '
                       r'quantizer FactorizedQuantizer has 2 branch\(es\): '
                       r'branch must be in \[0, 2\)'):
        tiny(quantizer=FQ,
             regularizers=[dict(type='_ProbeRegularizer', branch=branch)])


# ------------------------------------------------------------- image size
@pytest.mark.parametrize('height,width', [(17, 16), (16, 17), (17, 19)])
def test_image_size_not_divisible_is_named(height, width):
    model = tiny()
    with pytest.raises(ValueError,
                       match=rf'image size {height}x{width} is not divisible '
                       r"by the encoder's downsample factor 2: resize or "
                       r'crop images to a multiple of 2'):
        model.quantize(images(height=height, width=width))


def test_image_size_check_reads_the_last_two_axes():
    """An unbatched ``[C, H, W]`` image is named by its ``HxW`` too."""
    model = tiny()
    with pytest.raises(ValueError, match='image size 17x16 is not'):
        model.quantize(images(height=17)[0])


def test_encoder_without_downsample_factor_takes_any_size():
    model = tiny()
    del model.encoder.downsample_factor
    out = model.quantize(images(height=17))
    assert out.indices.shape == (2, 1, 8, 8)


# ---------------------------------------------------------------- indices
def test_indices_of_wrong_shape_are_named():
    model = tiny(quantizer=FQ)
    for shape in [(2, 1, 4, 4), (2, 3, 4, 4), (2, 2, 4)]:
        with pytest.raises(ValueError,
                           match=r'indices must be \[B, G, h, w\] with G = 2 '
                           r'sub-codebooks of FactorizedQuantizer, got '
                           + rf'\[{", ".join(map(str, shape))}\]'):
            model.decode(torch.zeros(shape, dtype=torch.long))


def test_out_of_range_index_is_named_with_first_count_min_max():
    model = tiny(quantizer=FQ)
    indices = torch.zeros(2, 2, 4, 4, dtype=torch.long)
    indices[0, 1, 0, 0] = 9
    indices[0, 1, 0, 1] = -3
    indices[1, 1, 2, 2] = 8
    with pytest.raises(ValueError,
                       match=r'indices of codebook 1 of FactorizedQuantizer '
                       r'must be in \[0, 8\), got 9 \(3 out of range, min -3,'
                       r' max 9\)'):
        model.decode(indices)


def test_index_equal_to_codebook_size_is_refused():
    model = tiny(quantizer=FQ)
    indices = torch.zeros(1, 2, 4, 4, dtype=torch.long)
    indices[0, 0, 3, 3] = 8
    with pytest.raises(ValueError, match=r'codebook 0 .* got 8 \(1 out of'):
        model.decode(indices)


def test_first_and_last_codes_decode_by_hand():
    """Indices 0 and ``codebook_size - 1`` are valid: the image decodes
    the l2-normalised codes of each branch."""
    model = tiny(quantizer=FQ).eval()
    indices = torch.zeros(1, 2, 4, 4, dtype=torch.long)
    indices[0, 0, ::2] = 7
    indices[0, 1, :, 1::2] = 7
    codes = [F.normalize(sub.embedding.weight, dim=-1)[indices[:, g]]
             for g, sub in enumerate(model.quantizer.subs)]
    quantized = torch.cat(codes, dim=-1).permute(0, 3, 1, 2)
    with torch.no_grad():
        expected = model.decoder(model.post_quant_conv(quantized))
    torch.testing.assert_close(model.decode(indices), expected)


# -------------------------------------------------------- contract checks
def test_quantizer_contract_is_checked_once(monkeypatch):
    calls = []
    original = tokenizer_module.check_quantizer_output

    def spy(quantizer, z, out):
        calls.append((quantizer, z.shape, out))
        return original(quantizer, z, out)

    monkeypatch.setattr(tokenizer_module, 'check_quantizer_output', spy)
    model = tiny()
    x = images()
    out = model.quantize(x)
    model.quantize(x)
    model(x, mode='loss')
    assert len(calls) == 1
    quantizer, shape, seen = calls[0]
    assert quantizer is model.quantizer and seen is out
    assert shape == (2, 4, 8, 8)


# ------------------------------------------------------------ token layout
def test_token_layout_by_hand():
    model = tiny(quantizer=FQ)
    assert model.token_layout([16, (16, 32)]) == dict(
        codebook_sizes=[8, 8], sub_tokens=['pixel', 'pixel'],
        downsample_factor=2, grids={'16x16': [8, 8], '16x32': [8, 16]})
    assert model.token_layout()['grids'] == {}


# ------------------------------------------------------------------ losses
def test_zero_perceptual_weight_adds_no_perceptual_term():
    model = tiny(perceptual_loss=ToyPerceptual(), perceptual_weight=0.0)
    assert 'loss_perceptual' not in model(images(), mode='loss')


def test_adaptive_weight_below_one_is_not_raised():
    """A GAN gradient larger than the reconstruction's gives an adaptive
    ratio below 1, kept as is (the clamp is ``[0, 1e4]``)."""
    model = tiny(discriminator=dict(type='PatchGANDiscriminator', ndf=8,
                                    num_layers=2),
                 adaptive_disc_weight=True, rec_weight=1e-3, disc_weight=0.6)
    x = images()
    log, before = step(model, 0, x)
    for p in before.discriminator.parameters():
        p.requires_grad_(False)
    recon = before.decode_quantized(before.quantize(x).quantized)
    last = before.decoder.last_layer
    nll = 1e-3 * ((recon - x)**2).mean()
    g = -before.discriminator(recon).mean()
    g_nll = torch.autograd.grad(nll, last, retain_graph=True)[0]
    g_adv = torch.autograd.grad(g, last)[0]
    ratio = g_nll.norm() / (g_adv.norm() + 1e-4)
    assert ratio < 0.5
    torch.testing.assert_close(log['loss_adv'], (0.6 * ratio * g).detach(),
                               rtol=1e-5, atol=1e-8)


# ---------------------------------------------------------------- iteration
def fresh_hub():
    """A new current MessageHub that has no ``iter`` yet."""
    return MessageHub.get_instance(f'fqzoo-test-{uuid.uuid4().hex}')


@pytest.mark.parametrize('disc_start', [0, 1])
def test_iteration_defaults_to_zero_without_a_recorded_iter(disc_start):
    model = tiny(discriminator=dict(type='PatchGANDiscriminator', ndf=8,
                                    num_layers=2), disc_start=disc_start)
    fresh_hub()
    log = model.train_step(dict(inputs=images()), wrappers_for(model))
    assert ('loss_adv' in log) == (disc_start == 0)


# --------------------------------------------------------------- train_step
def test_each_step_runs_in_its_optim_wrappers_context():
    """The autoencoder step runs in its wrapper's context for the model, the
    discriminator step in its wrapper's context for the discriminator (what
    gradient accumulation under DDP reads ``no_sync`` from)."""
    model = tiny(discriminator=dict(type='PatchGANDiscriminator', ndf=8,
                                    num_layers=2))
    wrappers = wrappers_for(model)
    seen = {}
    for name in ('autoencoder', 'discriminator'):
        wrapper = wrappers[name]

        def spy(module, name=name, original=wrapper.optim_context):
            seen[name] = module
            return original(module)

        wrapper.optim_context = spy
    MessageHub.get_current_instance().update_info('iter', 0)
    model.train_step(dict(inputs=images()), wrappers)
    assert seen['autoencoder'] is model
    assert seen['discriminator'] is model.discriminator


class PlainWrapper(nn.Module):
    """Stands in for the DDP wrappers the distributed wrapper puts around
    each submodule (a registered model wrapper; no device placement)."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


@pytest.fixture
def wrap():
    name = f'_PlainWrapper{uuid.uuid4().hex}'
    MODEL_WRAPPERS.register_module(name=name, module=PlainWrapper)
    yield PlainWrapper
    MODEL_WRAPPERS._module_dict.pop(name)


def test_wrapped_submodules_are_looked_inside(wrap):
    """Submodules in a model wrapper (as the distributed wrapper leaves
    them) are read through it: the encoder's downsample factor, the
    quantizer's codebooks and name, the decoder's last layer."""
    model = tiny(quantizer=FQ,
                 discriminator=dict(type='PatchGANDiscriminator', ndf=8,
                                    num_layers=2),
                 adaptive_disc_weight=True)
    for name in ('encoder', 'quantizer', 'decoder', 'discriminator'):
        setattr(model, name, wrap(getattr(model, name)))
    with pytest.raises(ValueError, match='image size 17x16 is not'):
        model.quantize(images(height=17))
    with pytest.raises(ValueError, match='G = 2 sub-codebooks of '
                       'FactorizedQuantizer'):
        model.decode(torch.zeros(1, 1, 4, 4, dtype=torch.long))
    out = model.val_step(dict(inputs=images()))
    assert out[0]['codebook_size'] == 8
    MessageHub.get_current_instance().update_info('iter', 0)
    log = model.train_step(dict(inputs=images()), wrappers_for(model))
    assert torch.isfinite(log['loss_adv'])


def test_contract_violation_through_a_wrapper_is_named(wrap):
    @QUANTIZERS.register_module(name='_FlatIndices', force=True)
    class FlatIndices(nn.Module):
        num_codebooks, codebook_size, embed_dim = 1, 4, 4
        in_channels, num_branches = 4, 1

        def forward(self, z):
            return QuantizerOutput(z, torch.zeros(z.shape[0], z.shape[2],
                                                  z.shape[3],
                                                  dtype=torch.long))

    model = tiny(quantizer=dict(type='_FlatIndices'))
    model.quantizer = wrap(model.quantizer)
    with pytest.raises(TypeError, match='indices must be a LongTensor'):
        model(images())
