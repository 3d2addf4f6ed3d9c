"""The released-FQGAN converter on synthetic checkpoints with the released
key layout (generated from the documented key map over tiny models)."""
import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import vqgan_reference as reference
from mmengine.config import Config

from fqzoo.apis import init_tokenizer
from fqzoo.converters import fqgan_key_table
from fqzoo.converters.fqgan import BRANCHES, model_config
from fqzoo.converters.model import build_model

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location(
    'official_fqgan', REPO / 'tools' / 'convert' / 'official_fqgan.py')
official = importlib.util.module_from_spec(spec)
spec.loader.exec_module(official)

# The released branches in the order the released decoder concatenates
# them: (suffix of norm_out_/conv_out_/quant_conv_/quantize_, adapter list).
RELEASED_BRANCHES = {
    'dual': [('vis', 'visual_head'), ('sem', 'semantic_head')],
    'triple': [('vis', 'visual_head'), ('sem_mid', 'semantic_head_mid'),
               ('sem_high', 'semantic_head_high')],
}
TINY = """
model = dict(
    type='ImageTokenizer',
    encoder=dict(type='VQGANTrunk', ch={ch}, ch_mult=(1, 2),
                 num_res_blocks=1),
    heads=dict(type='TransformerBranchHead', in_channels={ch2},
               out_channels={ch},
               num_layers=2, num_heads=2, grid_size=4),
    quantizer=dict(type='FactorizedQuantizer', num_codebooks={k},
                   quantizer=dict(type='VectorQuantizer', codebook_size=32,
                                  embed_dim=4, l2_norm=True)),
    decoder=dict(type='VQGANDecoder', ch={ch}, ch_mult=(1, 2),
                 num_res_blocks=1, z_channels={ch}),
    regularizers=[dict(type='DisentanglementRegularizer')] + [
        dict(type='SemanticRegularizer', branch=b,
             teacher=dict(type='EfficientNetTeacher', pretrained=False),
             head=dict(type='FeaturePredictionHead', in_channels=4, width=16,
                       num_layers=1, num_heads=2, grid_size=4))
        for b in range(1, {k})],
    discriminator=dict(type='PatchGANDiscriminator', ndf=8, num_layers=2),
)
"""


def write_tiny(tmp_path, variant, ch=8):
    """A tiny FQGAN config of ``variant``: trunk width ``ch`` (level 1 and
    the adapters ``2 ch``), 4x4 adapter grids over 8x8 images, codebooks of
    32 x 4, a prediction head per semantic branch."""
    k = len(RELEASED_BRANCHES[variant])
    path = tmp_path / f'tiny_{variant}_{ch}.py'
    path.write_text(TINY.replace('{k}', str(k)).replace('{ch2}', str(2 * ch))
                    .replace('{ch}', str(ch)))
    return path


def synthetic_release(model, variant):
    """Random tensors under the released keys of ``model``'s parameters,
    plus the released usage buffers."""
    semantic = [i for i, r in enumerate(model.regularizers)
                if hasattr(r, 'head')]
    table = fqgan_key_table(variant, semantic)
    rng = torch.Generator().manual_seed(0)
    state, expected = {}, {}
    for name, param in model.named_parameters():
        value = torch.randn(param.shape, generator=rng)
        state[table.to_released(name)] = value
        expected[name] = value
    for branch, _ in BRANCHES[variant]:
        state[f'quantize_{branch}.codebook_used'] = torch.zeros(65536)
    return state, expected


@pytest.mark.parametrize('variant,k', [('dual', 2), ('triple', 3)])
def test_convert_load_and_run(tmp_path, variant, k):
    config = write_tiny(tmp_path, variant)
    model = build_model(model_config(config), 'cpu')
    state, expected = synthetic_release(model, variant)
    keys = set(state)
    # The released layout, spot-checked against showlab/FQGAN's names.
    head = 'semantic_head' if variant == 'dual' else 'semantic_head_high'
    assert {f'encoder.{head}.0.transformer.1.attn.in_proj_weight',
            f'encoder.{head}.0.transformer.0.mlp.c_fc.weight',
            'encoder.visual_head.0.positional_embedding',
            'encoder.norm_out_vis.weight', 'encoder.conv_out_vis.bias',
            'quant_conv_vis.weight', 'quantize_vis.embedding.weight',
            'encoder.mid.1.q.weight', 'post_quant_conv.weight',
            'decoder.conv_out.weight'} <= keys
    pred = 'feat_pred_head' if variant == 'dual' else 'high_sem_feat_pred'
    assert {f'{pred}.upscale.0.weight', f'{pred}.upscale.2.bias',
            f'{pred}.class_embedding', f'{pred}.ln_post.weight',
            f'{pred}.transformer.0.ln_1.weight'} <= keys
    src, dst = tmp_path / 'release.pt', tmp_path / 'fqzoo.pth'
    out_config = tmp_path / 'converted.py'
    torch.save({'model': state}, src)
    official.main([str(src), str(dst), '--out-config', str(out_config),
                   '--config', str(config)])

    out = torch.load(dst, weights_only=True)
    meta = out['meta']
    assert (meta['family'], meta['layout']) == ('fqgan', variant)
    assert sorted(meta['dropped']) == sorted(
        f'quantize_{b}.codebook_used' for b, _ in BRANCHES[variant])
    # 4x4 adapter grid at downsample 2: 8x8 images; a semantic branch is
    # named after its regularizer's loss (unnamed: loss_semantic_<branch>).
    assert meta['token_layout'] == dict(
        codebook_sizes=[32] * k,
        sub_tokens=['pixel'] + [f'semantic_{b}' for b in range(1, k)],
        downsample_factor=2, grids={'8x8': [4, 4]})
    written = Config.fromfile(str(out_config))
    assert written.model.discriminator is None
    assert written.model.heads.grid_size == 4
    tok = init_tokenizer(written, dst)
    loaded = dict(tok.named_parameters())
    assert set(loaded) == set(expected)
    for name, value in expected.items():
        assert torch.equal(loaded[name], value), name
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    idx = tok.encode(x)
    assert idx.shape == (2, k, 4, 4)
    assert tok.decode(idx).shape == x.shape


def released_adapter(state, prefix, x, num_heads):
    """The released FactorizedAdapter + norm_out/SiLU/conv_out written from
    its description with the released key names (functional)."""
    b, c, h, w = x.shape
    t = x.flatten(2).transpose(1, 2) + state[prefix + 'positional_embedding']
    t = F.layer_norm(t, (c,), state[prefix + 'ln_pre.weight'],
                     state[prefix + 'ln_pre.bias']).transpose(0, 1)
    layer = 0
    while f'{prefix}transformer.{layer}.ln_1.weight' in state:
        p = f'{prefix}transformer.{layer}.'
        y = F.layer_norm(t, (c,), state[p + 'ln_1.weight'],
                         state[p + 'ln_1.bias'])
        t = t + F.multi_head_attention_forward(
            y, y, y, c, num_heads, state[p + 'attn.in_proj_weight'],
            state[p + 'attn.in_proj_bias'], None, None, False, 0.0,
            state[p + 'attn.out_proj.weight'],
            state[p + 'attn.out_proj.bias'], need_weights=False)[0]
        y = F.layer_norm(t, (c,), state[p + 'ln_2.weight'],
                         state[p + 'ln_2.bias'])
        y = F.gelu(F.linear(y, state[p + 'mlp.c_fc.weight'],
                            state[p + 'mlp.c_fc.bias']))
        t = t + F.linear(y, state[p + 'mlp.c_proj.weight'],
                         state[p + 'mlp.c_proj.bias'])
        layer += 1
    t = F.layer_norm(t.transpose(0, 1), (c,), state[prefix + 'ln_post.weight'],
                     state[prefix + 'ln_post.bias'])
    return t.transpose(1, 2).reshape(b, c, h, w)


def test_converted_adapter_computes_the_released_function(tmp_path):
    config = write_tiny(tmp_path, 'dual')
    model = build_model(model_config(config), 'cpu')
    state, _ = synthetic_release(model, 'dual')
    src, dst = tmp_path / 'release.pt', tmp_path / 'fqzoo.pth'
    torch.save({'model': state}, src)
    official.main([str(src), str(dst), '--out-config',
                   str(tmp_path / 'converted.py'), '--config', str(config)])
    cfg = Config.fromfile(str(config))
    tok = init_tokenizer(cfg, dst)
    x = torch.randn(2, 16, 4, 4, generator=torch.Generator().manual_seed(1))
    ref = released_adapter(state, 'encoder.semantic_head.0.', x, 2)
    ref = F.conv2d(F.silu(F.group_norm(ref, 16,
                                       state['encoder.norm_out_sem.weight'],
                                       state['encoder.norm_out_sem.bias'],
                                       eps=1e-6)),
                   state['encoder.conv_out_sem.weight'],
                   state['encoder.conv_out_sem.bias'], padding=1)
    with torch.no_grad():
        out = tok.heads[1](x)
    # Random N(0, 1) weights give outputs of tens: compare relatively.
    assert (out - ref).abs().max() < 1e-3 * ref.abs().max()


def trained_scale_release(model, variant, seed):
    """Random tensors under the released keys of ``model``'s parameters at
    the scale of a trained model (weights ~ N(0, 1 / fan-in), norms near
    one, small biases), so activations stay O(1) through the trunk and the
    adapters and every branch picks several codes."""
    semantic = [i for i, r in enumerate(model.regularizers)
                if hasattr(r, 'head')]
    table = fqgan_key_table(variant, semantic)
    rng = torch.Generator().manual_seed(seed)
    state = {}
    for name, param in model.named_parameters():
        value = torch.randn(param.shape, generator=rng)
        if 'norm' in name or 'ln_' in name:
            value = 1 + 0.2 * value if name.endswith('weight') \
                else 0.1 * value
        elif param.dim() > 1 and 'embedding' not in name:
            value = value / param[0].numel() ** 0.5
        elif param.dim() == 1:
            value = 0.1 * value
        state[table.to_released(name)] = value
    for branch, _ in RELEASED_BRANCHES[variant]:
        state[f'quantize_{branch}.codebook_used'] = torch.zeros(65536)
    return state


def l2_normalised(t):
    return t / t.norm(dim=-1, keepdim=True)


def released_encode(state, x, variant):
    """The released ``VQModel.encode`` (trunk, per branch: adapter,
    ``norm_out_<b>``, SiLU, ``conv_out_<b>``, ``quant_conv_<b>``, the
    nearest l2-normalised code of ``quantize_<b>``) written with functional
    ops on the checkpoint's tensors, read by the released names typed
    here: indices ``[B, G, h, w]``."""
    h = reference.encoder_trunk(x, state, levels=2, blocks=1, groups=32,
                                prefix='encoder.')
    indices = []
    for branch, adapter in RELEASED_BRANCHES[variant]:
        y = released_adapter(state, f'encoder.{adapter}.0.', h, 2)
        y = F.group_norm(y, 32, state[f'encoder.norm_out_{branch}.weight'],
                         state[f'encoder.norm_out_{branch}.bias'], eps=1e-6)
        y = F.conv2d(F.silu(y), state[f'encoder.conv_out_{branch}.weight'],
                     state[f'encoder.conv_out_{branch}.bias'], padding=1)
        z = F.conv2d(y, state[f'quant_conv_{branch}.weight'],
                     state[f'quant_conv_{branch}.bias'])
        b, c, height, width = z.shape
        flat = l2_normalised(z.permute(0, 2, 3, 1).reshape(-1, c))
        codes = l2_normalised(state[f'quantize_{branch}.embedding.weight'])
        nearest = torch.cdist(flat, codes).argmin(dim=1)
        indices.append(nearest.reshape(b, height, width))
    return torch.stack(indices, dim=1)


def released_decode(state, indices, variant):
    """The released ``decode_code``: each branch's l2-normalised codes,
    concatenated in the released order, ``post_quant_conv``, decoder."""
    parts = [l2_normalised(state[f'quantize_{branch}.embedding.weight'])[
        indices[:, g]].permute(0, 3, 1, 2)
        for g, (branch, _) in enumerate(RELEASED_BRANCHES[variant])]
    z = F.conv2d(torch.cat(parts, dim=1), state['post_quant_conv.weight'],
                 state['post_quant_conv.bias'])
    return reference.decoder(z, state, levels=2, blocks=1, groups=32,
                             prefix='decoder.')


@pytest.mark.parametrize('variant,ema', [('dual', False), ('dual', True),
                                         ('triple', True)])
def test_converted_tokenizer_computes_the_released_model(tmp_path, variant,
                                                         ema):
    """A synthetic release holding different ``model`` and ``ema`` weights,
    converted (``--ema`` or not): its codebooks are the checkpoint's rows
    at the released names, and its tokens and decoded images equal the
    released model's computed from the selected entry's raw tensors
    (:func:`released_encode`, :func:`released_decode`; 32-group GroupNorms
    as released, float64), while the other entry gives other tokens."""
    config = write_tiny(tmp_path, variant, ch=32)
    model = build_model(model_config(config), 'cpu')
    entries = {'model': trained_scale_release(model, variant, seed=0),
               'ema': trained_scale_release(model, variant, seed=1)}
    src, dst = tmp_path / 'release.pt', tmp_path / 'fqzoo.pth'
    out_config = tmp_path / 'converted.py'
    torch.save(entries, src)
    meta = official.main([str(src), str(dst), '--out-config',
                          str(out_config), '--config', str(config)]
                         + ['--ema'] * ema)
    chosen = 'ema' if ema else 'model'
    assert meta['entry'] == chosen
    state = {k: v.double() for k, v in entries[chosen].items()}
    other = {k: v.double()
             for k, v in entries['model' if ema else 'ema'].items()}
    tok = init_tokenizer(Config.fromfile(str(out_config)), dst).double()
    for g, (branch, _) in enumerate(RELEASED_BRANCHES[variant]):
        assert torch.equal(tok.quantizer.subs[g].embedding.weight,
                           state[f'quantize_{branch}.embedding.weight'])
    rng = torch.Generator().manual_seed(2)
    x = torch.rand(2, 3, 8, 8, generator=rng, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        expected = released_encode(state, x, variant)
        indices = tok.encode(x)
        assert all(expected[:, g].unique().numel() > 4
                   for g in range(expected.shape[1]))
        assert torch.equal(indices, expected)
        assert not torch.equal(released_encode(other, x, variant), expected)
        torch.testing.assert_close(tok.decode(indices),
                                   released_decode(state, indices, variant))
