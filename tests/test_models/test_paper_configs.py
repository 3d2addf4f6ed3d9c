"""Paper-scale FQGAN models build from their configs, run, and have the
parameter counts of the released architecture (showlab/FQGAN
tokenizer/vq_model_{dual,triple}.py), derived here from its description."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from fqzoo.registry import MODELS

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'


def conv(cin, cout, k):
    return cin * cout * k * k + cout


def norm(c):
    return 2 * c


def resnet(cin, cout):
    n = norm(cin) + conv(cin, cout, 3) + norm(cout) + conv(cout, cout, 3)
    return n + (conv(cin, cout, 1) if cin != cout else 0)


def attn(c):
    return norm(c) + 4 * conv(c, c, 1)


def released_trunk(ch_mult, ch=128, blocks=2):
    """Encoder minus the per-branch heads: conv_in, conv_blocks, mid."""
    n, cin = conv(3, ch, 3), ch
    for level, mult in enumerate(ch_mult):
        for _ in range(blocks):
            n += resnet(cin, ch * mult)
            cin = ch * mult
            if level == len(ch_mult) - 1:
                n += attn(cin)
        if level != len(ch_mult) - 1:
            n += conv(cin, cin, 3)
    return n + 2 * resnet(cin, cin) + attn(cin)


def released_decoder(ch_mult, ch=128, blocks=2, z=256):
    cin = ch * ch_mult[-1]
    n = conv(z, cin, 3) + 2 * resnet(cin, cin) + attn(cin)
    for level, mult in enumerate(reversed(ch_mult)):
        for _ in range(blocks + 1):
            n += resnet(cin, ch * mult)
            cin = ch * mult
            if level == 0:
                n += attn(cin)
        if level != len(ch_mult) - 1:
            n += conv(cin, cin, 3)
    return n + norm(cin) + conv(cin, 3, 3)


def block(w):
    """ResidualAttentionBlock: ln_1, MultiheadAttention, ln_2, 4x MLP."""
    return norm(w) + (3 * w * w + 3 * w) + (w * w + w) + norm(w) + \
        (w * 4 * w + 4 * w) + (4 * w * w + w)


def released_adapter_branch(grid, w=512, z=256):
    """FactorizedAdapter + norm_out_* + conv_out_* of one branch."""
    return grid * grid * w + 2 * norm(w) + 6 * block(w) + norm(w) + \
        conv(w, z, 3)


def released_feat_pred_head(grid, width, in_dim=8):
    return (in_dim * width + width) + (width * width + width) + width + \
        (grid * grid + 1) * width + 2 * norm(width) + 3 * block(width)


def released_total(k, ch_mult, grid, head_widths):
    return (released_trunk(ch_mult)
            + k * (released_adapter_branch(grid) + conv(256, 8, 1)
                   + 16384 * 8)
            + conv(8 * k, 256, 1) + released_decoder(ch_mult)
            + sum(released_feat_pred_head(grid, w) for w in head_widths))


PAPER = [
    ('fqgan_dual_ds16', 2, (1, 1, 2, 2, 4), 16, [1024]),
    ('fqgan_triple_ds16', 3, (1, 1, 2, 2, 4), 16, [384, 768]),
    ('fqgan_dual_ds8', 2, (1, 2, 2, 4), 32, [1024]),
    ('fqgan_triple_ds8', 3, (1, 2, 2, 4), 32, [384, 768]),
]


def build(name):
    cfg = Config.fromfile(str(CONFIGS / '_base_' / 'models' / f'{name}.py'))
    # Training-only parts that need weights files: not in the count.
    cfg.model.update(perceptual_loss=None, discriminator=None)
    return MODELS.build(cfg.model)


@pytest.mark.parametrize('name,k,ch_mult,grid,widths', PAPER)
def test_parameter_count_matches_released_architecture(name, k, ch_mult,
                                                        grid, widths):
    model = build(name)
    count = sum(p.numel() for p in model.parameters())
    assert count == released_total(k, ch_mult, grid, widths)
    assert model.quantizer.num_codebooks == k
    assert [r.head.width for r in model.regularizers[1:]] == widths
    assert all(r.teacher is None for r in model.regularizers[1:])


def test_hand_worked_branch_numbers():
    # One transformer block at width 512: 12 * 512^2 + 13 * 512.
    assert block(512) == 3_152_384
    # Adapter + tail at 16x16: 6 blocks + 256 x 512 positions + 3 norms
    # (ln_pre, ln_post, GroupNorm) + 3x3 conv 512 -> 256.
    assert released_adapter_branch(16) == \
        6 * 3_152_384 + 131_072 + 3 * 1_024 + 1_179_904 == 20_228_352


def test_paper_model_forward_at_small_resolution():
    model = build('fqgan_triple_ds16').eval()
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    idx = model.encode(x)
    assert idx.shape == (1, 3, 4, 4)
    assert model.decode(idx).shape == (1, 3, 64, 64)


@pytest.mark.parametrize('name', ['fqgan_dual_ds16', 'fqgan_triple_ds16',
                                  'fqgan_dual_ds8', 'fqgan_triple_ds8',
                                  'fq2_dino_clip'])
def test_leaf_configs(name):
    if not (CONFIGS / '_base_' / 'datasets' / 'imagenet.py').exists():
        pytest.fail('configs/_base_/datasets/imagenet.py is missing')
    cfg = Config.fromfile(str(CONFIGS / 'fq' / f'{name}.py'))
    assert cfg.train_dataloader.batch_size == 32
    assert cfg.optim_wrapper.autoencoder.optimizer.lr == 2e-4
    assert cfg.model.disc_start == 20000
    regs = cfg.model.regularizers
    assert regs[0] == dict(type='DisentanglementRegularizer', weight=0.1)
    assert all(r.weight == 0.5 for r in regs[1:])
    teachers = [(r.branch, r.teacher.type) for r in regs[1:]]
    expected = {
        'fqgan_dual_ds16': [(1, 'CLIPTeacher')],
        'fqgan_dual_ds8': [(1, 'CLIPTeacher')],
        'fqgan_triple_ds16': [(1, 'DINOv2Teacher'), (2, 'CLIPTeacher')],
        'fqgan_triple_ds8': [(1, 'DINOv2Teacher'), (2, 'CLIPTeacher')],
        'fq2_dino_clip': [(0, 'DINOv2Teacher'), (1, 'CLIPTeacher')],
    }[name]
    assert teachers == expected
