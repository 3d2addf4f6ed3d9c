"""The LlamaGen GPT and FAR converters on synthetic checkpoints with the
released key layouts (FoundationVision/LlamaGen ``gpt.py``, showlab/FQGAN
``far_dual.py`` / ``far_triple.py``), checked against a functional forward
written here from the raw released tensors."""
import argparse
import hashlib
import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

from fqzoo.apis import init_generator
from fqzoo.converters import convert_released
from fqzoo.errors import InputError

REPO = Path(__file__).resolve().parents[2]


def load_tool(name):
    spec = importlib.util.spec_from_file_location(
        name, REPO / 'tools' / 'convert' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOOLS = dict(llamagen=load_tool('llamagen_gpt'), far=load_tool('official_far'))

# Tiny sizes: width D, heads H, key/value heads KV, SwiGLU width FFN (not
# Llama's rule, so it must be read from the shapes), vocabulary V.
CASES = {
    'llamagen': dict(family='llamagen', G=1, D=32, H=4, KV=2, FFN=80, V=24,
                     layers=2, head_layers=0, classes=5),
    'far_dual': dict(family='far', G=2, D=32, H=4, KV=4, FFN=48, V=16,
                     layers=2, head_layers=2, classes=5),
    'far_triple': dict(family='far', G=3, D=32, H=4, KV=4, FFN=64, V=16,
                       layers=1, head_layers=2, classes=7),
}
GRID = 4


def released_shapes(c):
    """The released state dict's keys and shapes (Transformer of gpt.py,
    far_dual.py, far_triple.py at the sizes of case ``c``)."""
    d, head_dim = c['D'], c['D'] // c['H']
    block = {
        'attention.wqkv.weight': (d + 2 * c['KV'] * head_dim, d),
        'attention.wo.weight': (d, d),
        'feed_forward.w1.weight': (c['FFN'], d),
        'feed_forward.w2.weight': (d, c['FFN']),
        'feed_forward.w3.weight': (c['FFN'], d),
        'attention_norm.weight': (d,),
        'ffn_norm.weight': (d,),
    }
    shapes = {'cls_embedding.embedding_table.weight': (c['classes'] + 1, d)}
    if c['family'] == 'llamagen':
        shapes['tok_embeddings.weight'] = (c['V'], d)
    else:
        for g in range(1, c['G'] + 1):
            shapes[f'tok_embeddings_{g}.weight'] = (c['V'], d)
        shapes['aggregation_layer.weight'] = (d, c['G'] * d)
        shapes['aggregation_layer.bias'] = (d,)
    for n in range(c['layers']):
        shapes.update({f'layers.{n}.{k}': s for k, s in block.items()})
    for n in range(c['head_layers']):
        shapes.update({f'ar_head.{n}.{k}': s for k, s in block.items()})
    shapes['norm.weight'] = (d,)
    if c['family'] == 'llamagen':
        shapes['output.weight'] = (c['V'], d)
    else:
        for g in range(1, c['G'] + 1):
            shapes[f'output_{g}.weight'] = (c['V'], d)
    return shapes


def random_release(c, seed=0):
    rng = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in released_shapes(c).items():
        value = torch.randn(shape, generator=rng)
        state[key] = 1 + 0.2 * value if key.endswith('norm.weight') \
            else 0.3 * value
    return state


# ---------------------------------------------------------------- reference
def rms_norm(x, weight):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * weight


def rotations(num_prefix_rows, head_dim):
    """Complex rotation per position and channel pair: zero for the class
    position, then the grid in raster order, the first half of the pairs
    turning with the row, the second half with the column."""
    quarter = head_dim // 4
    freqs = 10000.0 ** (-torch.arange(quarter, dtype=torch.float64)
                        / quarter)
    rows, cols = torch.meshgrid(torch.arange(GRID), torch.arange(GRID),
                                indexing='ij')
    angles = torch.cat([rows.reshape(-1, 1) * freqs,
                        cols.reshape(-1, 1) * freqs], dim=1)
    turns = torch.polar(torch.ones_like(angles), angles).to(torch.complex64)
    zero = torch.zeros(num_prefix_rows, 2 * quarter, dtype=torch.complex64)
    return torch.cat([zero, turns])


def rotate(x, turns):
    pairs = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2).contiguous())
    return torch.view_as_real(pairs * turns[:, None]).flatten(-2)


def block(x, p, prefix, turns, c):
    b, length, d = x.shape
    heads, kv, head_dim = c['H'], c['KV'], d // c['H']
    turns = turns[:length]
    h = rms_norm(x, p[prefix + 'attention_norm.weight'])
    q, k, v = (h @ p[prefix + 'attention.wqkv.weight'].T).split(
        [d, kv * head_dim, kv * head_dim], dim=-1)
    q = rotate(q.reshape(b, length, heads, head_dim), turns)
    k = rotate(k.reshape(b, length, kv, head_dim), turns)
    v = v.reshape(b, length, kv, head_dim)
    k, v = (t.repeat_interleave(heads // kv, dim=2) for t in (k, v))
    scores = torch.einsum('blhd,bmhd->bhlm', q, k) / head_dim ** 0.5
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    weights = scores.masked_fill(~causal, float('-inf')).softmax(-1)
    out = torch.einsum('bhlm,bmhd->blhd', weights, v).reshape(b, length, d)
    x = x + out @ p[prefix + 'attention.wo.weight'].T
    h = rms_norm(x, p[prefix + 'ffn_norm.weight'])
    ffn = F.silu(h @ p[prefix + 'feed_forward.w1.weight'].T) \
        * (h @ p[prefix + 'feed_forward.w3.weight'].T)
    return x + ffn @ p[prefix + 'feed_forward.w2.weight'].T


def released_logits(p, c, indices, labels):
    """The released c2i forward: [class, tokens[:-1]] through the blocks;
    LlamaGen: norm and output; FAR: the head blocks over [state, emb_1(idx_1),
    ...] per position (rotary rows 0..G-1), then norm and output_g."""
    z = indices.flatten(2)  # [B, G, N] raster order
    turns = rotations(1, c['D'] // c['H'])
    if c['family'] == 'llamagen':
        tokens = p['tok_embeddings.weight'][z[:, 0]]
    else:
        tokens = torch.cat([p[f'tok_embeddings_{g + 1}.weight'][z[:, g]]
                            for g in range(c['G'])], dim=-1)
        tokens = tokens @ p['aggregation_layer.weight'].T \
            + p['aggregation_layer.bias']
    x = torch.cat([p['cls_embedding.embedding_table.weight'][labels][:, None],
                   tokens[:, :-1]], dim=1)
    for n in range(c['layers']):
        x = block(x, p, f'layers.{n}.', turns, c)
    if c['family'] == 'llamagen':
        return [rms_norm(x, p['norm.weight']) @ p['output.weight'].T]
    batch, length, d = x.shape
    slots = [x] + [p[f'tok_embeddings_{g + 1}.weight'][z[:, g]]
                   for g in range(c['G'] - 1)]
    ctx = torch.stack(slots, dim=2).reshape(batch * length, c['G'], d)
    for n in range(c['head_layers']):
        ctx = block(ctx, p, f'ar_head.{n}.', turns, c)
    out = rms_norm(ctx, p['norm.weight']).reshape(batch, length, c['G'], d)
    return [out[:, :, g] @ p[f'output_{g + 1}.weight'].T
            for g in range(c['G'])]


# -------------------------------------------------------------------- tests
def convert(tmp_path, c, checkpoint, *extra):
    src, dst, cfg = (tmp_path / 'release.pt', tmp_path / 'fqzoo.pth',
                     tmp_path / 'generator.py')
    torch.save(checkpoint, src)
    TOOLS[c['family']].main([str(src), str(dst), '--out-config', str(cfg),
                             '--num-heads', str(c['H']), '--grid-size',
                             str(GRID), *extra])
    return src, dst, cfg


def pins(c):
    """Released key -> fqzoo key, a few per block."""
    out = {'cls_embedding.embedding_table.weight': 'class_embed.weight',
           'norm.weight': 'head.norm.weight'}
    for n in range(c['layers']):
        out[f'layers.{n}.attention.wqkv.weight'] = \
            f'backbone.stack.blocks.{n}.attention.wqkv.weight'
        out[f'layers.{n}.feed_forward.w2.weight'] = \
            f'backbone.stack.blocks.{n}.feed_forward.w2.weight'
        out[f'layers.{n}.attention_norm.weight'] = \
            f'backbone.stack.blocks.{n}.attention_norm.weight'
    if c['family'] == 'llamagen':
        out['tok_embeddings.weight'] = 'token_embed.tables.0.weight'
        out['output.weight'] = 'head.outputs.0.weight'
        return out
    for n in range(c['head_layers']):
        out[f'ar_head.{n}.attention.wo.weight'] = \
            f'head.stack.blocks.{n}.attention.wo.weight'
        out[f'ar_head.{n}.feed_forward.w3.weight'] = \
            f'head.stack.blocks.{n}.feed_forward.w3.weight'
        out[f'ar_head.{n}.ffn_norm.weight'] = \
            f'head.stack.blocks.{n}.ffn_norm.weight'
    for g in range(c['G']):
        out[f'tok_embeddings_{g + 1}.weight'] = f'token_embed.tables.{g}.weight'
        out[f'output_{g + 1}.weight'] = f'head.outputs.{g}.weight'
    out['aggregation_layer.weight'] = 'token_embed.proj.weight'
    out['aggregation_layer.bias'] = 'token_embed.proj.bias'
    return out


@pytest.mark.parametrize('case', sorted(CASES))
def test_converted_generator_computes_the_released_logits(tmp_path, case):
    c = CASES[case]
    state = random_release(c)
    src, dst, cfg_path = convert(tmp_path, c, {'model': state})

    out = torch.load(dst, weights_only=True)
    meta = out['meta']
    assert meta['sha256'] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert meta['src'] == 'release.pt' and meta['entry'] == 'model'
    assert meta['source'] == ('FoundationVision/LlamaGen'
                              if c['family'] == 'llamagen'
                              else 'showlab/FQGAN')
    assert meta['family'] == c['family']
    assert meta['layout'] == {1: 'c2i', 2: 'dual', 3: 'triple'}[c['G']]
    assert meta['token_layout']['codebook_sizes'] == [c['V']] * c['G']
    assert meta['token_layout']['grid'] == [GRID, GRID]
    cfg = Config.fromfile(str(cfg_path))
    assert cfg.default_scope == 'fqzoo'
    model = cfg.model
    assert model.num_classes == c['classes']
    assert tuple(model.grid_size) == (GRID, GRID)
    assert model.codebook_sizes == [c['V']] * c['G']
    assert model.class_dropout == 0.1
    assert model.backbone.num_layers == c['layers']
    assert model.backbone.ffn_hidden_dim == c['FFN']
    assert model.backbone.get('num_kv_heads', c['H']) == c['KV']
    assert (model.backbone.token_dropout, model.backbone.resid_dropout,
            model.backbone.ffn_dropout) == (0.1, 0.1, 0.1)
    if c['family'] == 'far':
        assert model.head.type == 'FactorizedARHead'
        assert model.head.num_layers == c['head_layers']
    else:
        assert model.head.type == 'ParallelLinearHead'

    gen = init_generator(cfg_path, dst)
    loaded = gen.state_dict()
    assert len(loaded) == len(state)
    for released, ours in pins(c).items():
        assert torch.equal(loaded[ours], state[released]), released

    seeded = torch.Generator().manual_seed(1)
    indices = torch.randint(c['V'], (3, c['G'], GRID, GRID), generator=seeded)
    labels = torch.tensor([0, c['classes'] - 1, 2])
    with torch.no_grad():
        ours = gen.logits(indices, labels)
    reference = released_logits(state, c, indices, labels)
    assert len(ours) == c['G']
    for g, (a, b) in enumerate(zip(ours, reference)):
        assert a.shape == (3, GRID * GRID, c['V'])
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4,
                                   msg=f'sub-token {g}')


def test_training_checkpoint_ema_prefixes_and_caches(tmp_path):
    c = CASES['far_dual']
    state = random_release(c, seed=2)
    wrapped = {f'module._orig_mod.{k}': v for k, v in state.items()}
    wrapped['module._orig_mod.layers.0.attention.kv_cache.k_cache'] = \
        torch.zeros(2, 4, 24, 8)
    wrapped['module._orig_mod.freqs_cis'] = torch.zeros(17, 4, 2)
    checkpoint = {'model': {k: torch.zeros_like(v) for k, v in state.items()},
                  'ema': wrapped, 'steps': 10, 'optimizer': {},
                  'args': argparse.Namespace(gpt_model='FAR-B', ema=True)}
    _, dst, cfg = convert(tmp_path, c, checkpoint, '--ema')
    meta = torch.load(dst, weights_only=True)['meta']
    assert meta['entry'] == 'ema'
    assert meta['stripped_prefixes'] == ['_orig_mod.', 'module.']
    assert sorted(meta['dropped']) == ['freqs_cis',
                                       'layers.0.attention.kv_cache.k_cache']
    gen = init_generator(cfg, dst)
    assert torch.equal(gen.token_embed.proj.bias,
                       state['aggregation_layer.bias'])


def edit(state, change):
    state = dict(state)
    change(state)
    return {'model': state}


ERRORS = {
    'missing': ('llamagen', lambda s: s.pop('layers.1.feed_forward.w3.weight'),
                KeyError, 'layers.1.feed_forward.w3.weight'),
    'extra output': ('far_dual', lambda s: s.update(
        {'output_3.weight': torch.zeros(16, 32)}), KeyError,
        'output_3.weight'),
    'unknown': ('far_triple', lambda s: s.update(
        {'layers.0.attention.bias': torch.zeros(32)}), KeyError,
        'layers.0.attention.bias'),
    'missing head block': ('far_dual', lambda s: s.pop(
        'ar_head.0.attention.wo.weight'), KeyError,
        'ar_head.0.attention.wo.weight'),
    'shape': ('far_dual', lambda s: s.update(
        {'layers.1.attention.wo.weight': torch.zeros(32, 33)}), ValueError,
        'layers.1.attention.wo.weight'),
}


@pytest.mark.parametrize('name', sorted(ERRORS))
def test_bad_keys_and_shapes_are_named(tmp_path, name):
    case, change, error, culprit = ERRORS[name]
    c = CASES[case]
    with pytest.raises(error, match=culprit.replace('.', r'\.')):
        convert(tmp_path, c, edit(random_release(c), change))


def test_bad_files_are_named(tmp_path):
    c = CASES['llamagen']
    src, dst, cfg = convert(tmp_path, c, {'model': random_release(c)})
    argv = [str(dst), '--out-config', str(cfg), '--num-heads', '4']
    truncated = tmp_path / 'truncated.pt'
    truncated.write_bytes(src.read_bytes()[:len(src.read_bytes()) // 2])
    text = tmp_path / 'notes.pt'
    text.write_text('not a checkpoint')
    for bad in (truncated, text):
        with pytest.raises(ValueError, match=f'{bad.name} is not a PyTorch'):
            TOOLS['llamagen'].main([str(bad), *argv])
    with pytest.raises(ValueError, match='convert it with tools/convert/'
                       'llamagen_gpt.py'):
        TOOLS['far'].main([str(src), *argv])
    with pytest.raises(KeyError, match='no ema entry'):
        TOOLS['llamagen'].main([str(src), *argv, '--ema'])
    with pytest.raises(ValueError, match='pass --num-heads'):
        TOOLS['llamagen'].main([str(src), str(dst), '--out-config',
                                str(cfg)])


def without(prefix):
    """A change dropping every key that starts with ``prefix``."""
    def change(state):
        for key in [k for k in state if k.startswith(prefix)]:
            del state[key]
    return change


# case, checkpoint from the released state dict, extra argv, error, message
MALFORMED = {
    'not a dict': ('llamagen', lambda s: list(s.values()), [], ValueError,
                   r'release\.pt holds a list, not a checkpoint dict'),
    'non-tensor entry': (
        'llamagen', lambda s: {'model': dict(s, steps=10)}, [], ValueError,
        r'release\.pt entry model: "steps" is of type int, not a tensor'),
    'no token embedding': (
        'llamagen', lambda s: edit(s, without('tok_embeddings.')), [],
        KeyError, r'release\.pt \(model\): Missing key "tok_embeddings\.'
        r'weight" \(LlamaGen GPT\): not a released llamagen checkpoint '
        r'\(keys: \[\W*cls_embedding'),
    'no class embedding': (
        'far_dual', lambda s: edit(s, without('cls_embedding.')), [],
        KeyError, r'release\.pt \(model\): Missing key "cls_embedding\.'
        r'embedding_table\.weight" \(needed for the class count'),
    'flat class embedding': (
        'far_dual', lambda s: edit(s, lambda e: e.update({
            'cls_embedding.embedding_table.weight': torch.zeros(6 * 32)})),
        [], ValueError, r'"cls_embedding\.embedding_table\.weight" has shape '
        r'\(192,\), expected 2 dimensions'),
    'qkv rows': (
        'llamagen', lambda s: edit(s, lambda e: e.update({
            'layers.0.attention.wqkv.weight': torch.zeros(33, 32)})),
        [], ValueError, r'"layers\.0\.attention\.wqkv\.weight" has shape '
        r'\(33, 32\): not \(num heads \+ 2 kv heads\) x head dim 8 rows'),
    'heads do not split width': (
        'llamagen', lambda s: {'model': s}, ['--num-heads', '3'], ValueError,
        r'release\.pt \(model\): 3 heads do not split width 32'),
    'heads too narrow': (
        'far_triple', lambda s: {'model': s}, ['--num-heads', '16'],
        ValueError, '16 heads do not split width 32 into heads of a '
        'multiple of 4 channels'),
    'no transformer blocks': (
        'llamagen', lambda s: edit(s, without('layers.')), [], KeyError,
        r'Missing key "layers\.0\.attention\.wqkv\.weight": no transformer'),
    'no FAR head blocks': (
        'far_dual', lambda s: edit(s, without('ar_head.')), [], KeyError,
        r'Missing key "ar_head\.0\.attention\.wqkv\.weight": no FAR head'),
    'grid size': ('far_dual', lambda s: {'model': s}, ['--grid-size', '0'],
                  ValueError, 'grid_size must be >= 1, got 0'),
}


@pytest.mark.parametrize('name', sorted(MALFORMED))
def test_malformed_checkpoints_and_arguments_are_named(tmp_path, name):
    case, wrap, extra, error, message = MALFORMED[name]
    c = CASES[case]
    with pytest.raises(error, match=message) as info:
        convert(tmp_path, c, wrap(random_release(c)), *extra)
    assert isinstance(info.value, InputError)   # tools: 'error: ...', exit 2
    assert not (tmp_path / 'fqzoo.pth').exists()
    assert not (tmp_path / 'generator.py').exists()
    # the same release, intact, converts
    convert(tmp_path, c, {'model': random_release(c)})
    assert (tmp_path / 'fqzoo.pth').is_file()


def test_unknown_family_is_named(tmp_path):
    c = CASES['llamagen']
    src, _, _ = convert(tmp_path, c, {'model': random_release(c)})
    with pytest.raises(ValueError, match=r"family must be one of \['far', "
                       r"'fqgan', 'llamagen', 'llamagen_vq'\], got 'gpt'"):
        convert_released(src, 'gpt', num_heads=c['H'])
    _, model_cfg = convert_released(src, 'llamagen', num_heads=c['H'])
    assert model_cfg['codebook_sizes'] == [c['V']]
