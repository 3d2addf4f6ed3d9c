"""Paper-scale FQGAN models build from their configs, run, and have the
parameter counts of the released architecture (showlab/FQGAN
tokenizer/vq_model_{dual,triple}.py), derived here from its description."""
from pathlib import Path

import pytest
import torch
import yaml
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


def model_config(name):
    return Config.fromfile(str(CONFIGS / '_base_' / 'models' / f'{name}.py'))


def build(name):
    cfg = model_config(name)
    # Training-only parts that need weights files: not in the count.
    cfg.model.update(perceptual_loss=None, discriminator=None)
    return MODELS.build(cfg.model)


def count(module):
    return sum(p.numel() for p in module.parameters())


def metafile_entry(name):
    """The model's ``Metadata`` in configs/fq/metafile.yml."""
    models = yaml.safe_load((CONFIGS / 'fq' / 'metafile.yml').read_text())
    return next(m['Metadata'] for m in models['Models'] if m['Name'] == name)


@pytest.mark.parametrize('name,k,ch_mult,grid,widths', PAPER)
def test_parameter_count_matches_released_architecture(name, k, ch_mult,
                                                        grid, widths):
    model = build(name)
    assert count(model) == released_total(k, ch_mult, grid, widths) == \
        metafile_entry(name)['Parameters']
    # part by part, so that two wrong parts cannot cancel out
    assert count(model.encoder) == released_trunk(ch_mult)
    assert [count(h) for h in model.heads] == \
        [released_adapter_branch(grid)] * k
    assert [count(c) for c in model.quant_convs] == [conv(256, 8, 1)] * k
    assert [count(sub) for sub in model.quantizer.subs] == [16384 * 8] * k
    assert count(model.post_quant_conv) == conv(8 * k, 256, 1)
    assert count(model.decoder) == released_decoder(ch_mult)
    assert [count(r) for r in model.regularizers] == \
        [0] + [released_feat_pred_head(grid, w) for w in widths]
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


@pytest.mark.parametrize('name,size', [('fqgan_triple_ds16', 64),
                                       ('fqgan_dual_ds8', 32)])
def test_paper_model_forward_at_small_resolution(name, size):
    """At a small image size: the token grid is the image size over the
    downsample factor of the config's ``ch_mult`` (and of the metafile),
    every branch's tokens are the nearest l2-normalised codes of its
    sub-codebook (a direct cdist argmin over the quantizer's input), and
    ``embed_indices`` / ``decode`` give back the quantized map."""
    torch.manual_seed(0)
    model = build(name).eval()
    meta = metafile_entry(name)
    factor = 2 ** (len(model_config(name).model.encoder.ch_mult) - 1)
    assert factor == meta['Downsample']
    assert [meta['Image Size'] // factor] * 2 == meta['Token Grid']
    grid = size // factor
    x = torch.rand(2, 3, size, size) * 2 - 1
    seen = {}
    model.quantizer.register_forward_hook(
        lambda module, args, out: seen.update(z=args[0]))
    with torch.no_grad():
        out = model.quantize(x)
    k = model.quantizer.num_codebooks
    assert out.indices.shape == (2, k, grid, grid)
    for g, (part, sub) in enumerate(zip(seen['z'].split(8, dim=1),
                                        model.quantizer.subs)):
        flat = part.permute(0, 2, 3, 1).reshape(-1, 8).double()
        codes = sub.embedding.weight.double()
        codes = codes / codes.norm(dim=1, keepdim=True)
        nearest = torch.cdist(flat / flat.norm(dim=1, keepdim=True),
                              codes).argmin(dim=1)
        assert nearest.unique().numel() > 1
        assert torch.equal(out.indices[:, g].flatten(), nearest)
        torch.testing.assert_close(
            out.branches[g].permute(0, 2, 3, 1).reshape(-1, 8),
            codes[nearest].float())
    embedded = model.quantizer.embed_indices(out.indices)
    torch.testing.assert_close(embedded, out.quantized)
    decoded = model.decode(out.indices)
    assert decoded.shape == x.shape
    with torch.no_grad():
        by_hand = model.decoder(model.post_quant_conv(out.quantized))
    torch.testing.assert_close(decoded, by_hand)


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
