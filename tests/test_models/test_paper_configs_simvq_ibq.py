"""Paper-scale SimVQ and IBQ configs build and have the parameter counts of
the released architectures: IBQ's from TencentARC/SEED-Voken
configs/IBQ/gpu/imagenet_ibqgan_{16384,262144}.yaml (taming trunk, 4
residual blocks per level), derived here from its description and equal to
the count of the released modules (recorded once); SimVQ's as LlamaGen's
VQ-16 (the "72M" of the LlamaGen paper) plus the released SimVQ module's
linear layer."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from test_paper_configs import conv, norm, released_decoder, released_trunk

from fqzoo.registry import MODELS

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
CH_MULT = (1, 1, 2, 2, 4)


def build(path):
    cfg = Config.fromfile(str(CONFIGS / path))
    # training-only parts that need weights files: not in the count
    cfg.model.update(perceptual_loss=None, discriminator=None)
    return MODELS.build(cfg.model), cfg


def count(module, trainable=False):
    return sum(p.numel() for p in module.parameters()
               if p.requires_grad or not trainable)


def taming_tokenizer(blocks, code_dim, codes):
    """Encoder (trunk + norm_out + conv_out to 256), quant_conv 256 -> D,
    codebook, post_quant_conv D -> 256, decoder."""
    return (released_trunk(CH_MULT, blocks=blocks) + norm(512)
            + conv(512, 256, 3) + conv(256, code_dim, 1) + codes * code_dim
            + conv(code_dim, 256, 1) + released_decoder(CH_MULT,
                                                        blocks=blocks))


def part_counts(model):
    """Parameters of each part, so that two wrong parts cannot cancel
    out in the total."""
    return dict(encoder=count(model.encoder),
                quant_conv=count(model.quant_convs[0]),
                quantizer=count(model.quantizer),
                post_quant_conv=count(model.post_quant_conv),
                decoder=count(model.decoder))


def released_parts(blocks, code_dim, codes, quantizer_extra=0):
    """:func:`taming_tokenizer` part by part."""
    return dict(encoder=released_trunk(CH_MULT, blocks=blocks) + norm(512)
                + conv(512, 256, 3),
                quant_conv=conv(256, code_dim, 1),
                quantizer=codes * code_dim + quantizer_extra,
                post_quant_conv=conv(code_dim, 256, 1),
                decoder=released_decoder(CH_MULT, blocks=blocks))


@pytest.mark.parametrize('name,codes', [('ibq_ds16_16384', 16384),
                                        ('ibq_ds16_262144', 262144)])
def test_ibq_counts_match_released(name, codes):
    model, cfg = build(f'ibq/{name}.py')
    n = count(model)
    assert n == taming_tokenizer(4, 256, codes)
    assert part_counts(model) == released_parts(4, 256, codes)
    # counted from the released Encoder, Decoder, quant_conv,
    # post_quant_conv and codebook (SEED-Voken b9a17ea)
    assert n == {16384: 110_982_019, 262144: 173_896_579}[codes]
    assert model.quantizer.codebook_size == codes
    assert model.quantizer.embed_dim == 256
    assert cfg.optim_wrapper.autoencoder.optimizer.betas == (0.5, 0.9)
    assert cfg.model.rec_loss == 'l1' and cfg.model.disc_weight == 0.1


@pytest.mark.parametrize('name,codes', [('simvq_ds16_16384', 16384),
                                        ('simvq_ds16_262144', 262144)])
def test_simvq_counts_are_vq16_plus_one_linear_layer(name, codes):
    model, _ = build(f'simvq/{name}.py')
    vq16, _ = build('vq/vqgan_ds16_imagenet.py')
    # LlamaGen VQ-16 (16384 x 8): the 72M of the LlamaGen paper
    assert count(vq16) == taming_tokenizer(2, 8, 16384) == 71_883_403
    linear = 8 * 8 + 8  # released SimVQ embedding_proj: Linear(D, D)
    assert count(model) == taming_tokenizer(2, 8, codes) + linear
    assert part_counts(model) == released_parts(2, 8, codes, linear)
    # only the linear layer of the quantizer trains
    assert count(model, trainable=True) == count(model) - codes * 8
    assert {k for k, _ in model.quantizer.named_parameters()} == {
        'embedding.weight', 'embedding_proj.weight', 'embedding_proj.bias'}


def ibq_tokens(flat, quantizer):
    """IBQ's token: the code of largest logit ``<z, e>``, and its code."""
    codes = quantizer.embedding.weight.double()
    return (flat @ codes.t()).argmax(dim=1), codes


def simvq_tokens(flat, quantizer):
    """SimVQ's token: the nearest code of the projected codebook
    ``E W^T + b`` (a direct cdist argmin), and the projected codes."""
    proj = quantizer.embedding_proj
    codes = (quantizer.embedding.weight.double() @ proj.weight.double().t()
             + proj.bias.double())
    return torch.cdist(flat, codes).argmin(dim=1), codes


@pytest.mark.parametrize('path,tokens', [
    ('ibq/ibq_ds16_16384.py', ibq_tokens),
    ('simvq/simvq_ds16_16384.py', simvq_tokens)], ids=['ibq', 'simvq'])
def test_paper_model_tokens_at_small_resolution(path, tokens):
    """At 64x64: a 4x4 grid (64 over the downsample factor of the config's
    ``ch_mult``), the indices computed directly from the quantizer's input,
    the quantized map equal to the chosen codes and to ``embed_indices``,
    and ``decode`` equal to the decoder run on it by hand."""
    torch.manual_seed(0)
    model, cfg = build(path)
    model.eval()
    grid = 64 // 2 ** (len(cfg.model.encoder.ch_mult) - 1)
    assert grid == 4
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    seen = {}
    model.quantizer.register_forward_hook(
        lambda module, args, out: seen.update(z=args[0]))
    with torch.no_grad():
        out = model.quantize(x)
    dim = model.quantizer.embed_dim
    assert out.indices.shape == (2, 1, grid, grid)
    flat = seen['z'].permute(0, 2, 3, 1).reshape(-1, dim).double()
    expected, codes = tokens(flat, model.quantizer)
    assert expected.unique().numel() > 1
    assert torch.equal(out.indices.flatten(), expected)
    torch.testing.assert_close(
        out.quantized.permute(0, 2, 3, 1).reshape(-1, dim),
        codes[expected].float())
    torch.testing.assert_close(model.quantizer.embed_indices(out.indices),
                               out.quantized)
    with torch.no_grad():
        by_hand = model.decoder(model.post_quant_conv(out.quantized))
    torch.testing.assert_close(model.decode(out.indices), by_hand)
