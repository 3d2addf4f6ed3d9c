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


@pytest.mark.parametrize('name,codes', [('ibq_ds16_16384', 16384),
                                        ('ibq_ds16_262144', 262144)])
def test_ibq_counts_match_released(name, codes):
    model, cfg = build(f'ibq/{name}.py')
    n = count(model)
    assert n == taming_tokenizer(4, 256, codes)
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
    # only the linear layer of the quantizer trains
    assert count(model, trainable=True) == count(model) - codes * 8
    assert {k for k, _ in model.quantizer.named_parameters()} == {
        'embedding.weight', 'embedding_proj.weight', 'embedding_proj.bias'}


def test_ibq_paper_model_runs_at_small_resolution():
    model, _ = build('ibq/ibq_ds16_16384.py')
    model.eval()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    idx = model.encode(x)
    assert idx.shape == (1, 1, 2, 2)
    assert model.decode(idx).shape == (1, 3, 32, 32)
