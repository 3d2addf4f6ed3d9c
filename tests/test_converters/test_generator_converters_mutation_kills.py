"""The generator converters (LlamaGen GPT, FAR), the dispatch and the
checkpoint files: behaviour that mutation testing showed no test pinned
down (docs/testing.md lists the mutants these tests kill).

References are written here: the released key layout and shapes of
LlamaGen's ``gpt.py`` and FQGAN's ``far_*.py`` at sizes that tell each
apart (width 32, 4 heads of 8 channels, 2 key/value heads in the trunk
and 1 in the FAR head, SwiGLU widths 80 and 48, vocabularies 16, 24 and
20, 5 classes), the released training dropouts of the module docstring,
messages spelled out in full, and formatted configs counted by hand.
"""
import hashlib
from argparse import Namespace
from pathlib import Path

import llamagen_release as release
import pytest
import torch
from mmengine.registry import DefaultScope
from torch import nn

from fqzoo.converters import (
    FAMILIES,
    config_text,
    convert_far,
    convert_llamagen_gpt,
    convert_released,
    detect_and_convert,
    detect_family,
    detect_far,
    detect_llamagen_gpt,
    files,
    get_family,
    gpt_key_table,
    load_checkpoint_file,
    released_shapes,
    select_weights,
    summary,
    token_layout,
    write_converted,
)
from fqzoo.converters.files import format_config
from fqzoo.converters.fqgan import model_config
from fqzoo.converters.model import build_model, check_state, complete_state
from fqzoo.converters.transformer import (
    convert_transformer,
    dropped_keys,
    generator_config,
    infer_architecture,
)
from fqzoo.errors import InputError, InputKeyError

REPO = Path(__file__).resolve().parents[2]

FAR = dict(family='far', width=32, num_layers=3, num_heads=4,
           num_kv_heads=2, ffn_hidden_dim=80, codebook_sizes=[16, 24, 20],
           num_classes=5, head_layers=2, head_num_kv_heads=1,
           head_ffn_hidden_dim=48)
GPT = dict(family='llamagen', width=32, num_layers=2, num_heads=4,
           num_kv_heads=2, ffn_hidden_dim=80, codebook_sizes=[24],
           num_classes=6)
BLOCK = ('attention.wqkv.weight', 'attention.wo.weight',
         'feed_forward.w1.weight', 'feed_forward.w2.weight',
         'feed_forward.w3.weight', 'attention_norm.weight',
         'ffn_norm.weight')
FAR_TOOL = 'tools/convert/official_far.py'
GPT_TOOL = 'tools/convert/llamagen_gpt.py'


def block_shapes(prefix, kv, ffn, d=32, head_dim=8):
    """One released ``TransformerBlock``: wqkv stacks the 4 query heads
    and ``kv`` key and value heads of ``head_dim`` rows each."""
    shapes = [(d + 2 * kv * head_dim, d), (d, d), (ffn, d), (d, ffn),
              (ffn, d), (d,), (d,)]
    return {f'{prefix}.{k}': s for k, s in zip(BLOCK, shapes)}


def far_shapes():
    """The released FAR keys of :data:`FAR` (typed from far_triple.py)."""
    shapes = {'cls_embedding.embedding_table.weight': (6, 32),
              'tok_embeddings_1.weight': (16, 32),
              'tok_embeddings_2.weight': (24, 32),
              'tok_embeddings_3.weight': (20, 32),
              'aggregation_layer.weight': (32, 96),
              'aggregation_layer.bias': (32,),
              'norm.weight': (32,),
              'output_1.weight': (16, 32), 'output_2.weight': (24, 32),
              'output_3.weight': (20, 32)}
    for n in range(3):
        shapes.update(block_shapes(f'layers.{n}', 2, 80))
    for n in range(2):
        shapes.update(block_shapes(f'ar_head.{n}', 1, 48))
    return shapes


def gpt_shapes():
    """The released LlamaGen GPT keys of :data:`GPT` (gpt.py)."""
    shapes = {'cls_embedding.embedding_table.weight': (7, 32),
              'tok_embeddings.weight': (24, 32), 'norm.weight': (32,),
              'output.weight': (24, 32)}
    for n in range(2):
        shapes.update(block_shapes(f'layers.{n}', 2, 80))
    return shapes


def random_state(shapes, seed=0, device='cpu'):
    rng = torch.Generator().manual_seed(seed)
    if device == 'meta':
        return {k: torch.empty(s, device='meta') for k, s in shapes.items()}
    return {k: torch.randn(s, generator=rng) for k, s in shapes.items()}


def far_state(seed=0):
    return random_state(far_shapes(), seed)


def gpt_state(seed=0):
    return random_state(gpt_shapes(), seed)


DROPOUTS = dict(attn_dropout=0.0, resid_dropout=0.1, ffn_dropout=0.1)


def expected_config(family, grid):
    """The generator config of :data:`FAR` / :data:`GPT` by hand: released
    training dropouts (attention 0, residual, SwiGLU, token and class 0.1),
    ``num_kv_heads`` only where it differs from the heads."""
    backbone = dict(type='LlamaGenBackbone', width=32,
                    num_layers=3 if family == 'far' else 2, num_heads=4,
                    num_kv_heads=2, ffn_hidden_dim=80, **DROPOUTS,
                    token_dropout=0.1)
    if family == 'far':
        head = dict(type='FactorizedARHead', num_layers=2, num_heads=4,
                    num_kv_heads=1, ffn_hidden_dim=48, **DROPOUTS)
    else:
        head = dict(type='ParallelLinearHead')
    return dict(type='AutoregressiveGenerator', backbone=backbone, head=head,
                num_classes=5 if family == 'far' else 6,
                token_embed=dict(type='FactorizedTokenEmbedding'),
                class_dropout=0.1, grid_size=(grid, grid),
                codebook_sizes=[16, 24, 20] if family == 'far' else [24])


# ------------------------------------------------------------ transformer
def test_released_shapes_are_the_released_layout():
    assert released_shapes(FAR) == far_shapes()
    assert released_shapes(GPT) == gpt_shapes()


def test_infer_architecture_reads_every_size_from_the_shapes():
    assert infer_architecture(far_state(), 'far', 4) == FAR
    assert infer_architecture(gpt_state(), 'llamagen', 4) == GPT
    arch = infer_architecture(far_state(), 'far', 4)
    assert all(type(arch[k]) is int for k in
               ('num_kv_heads', 'head_num_kv_heads', 'num_layers'))


@pytest.mark.parametrize('width,heads', [(768, 12), (1024, 16), (1280, 20),
                                         (1536, 24), (2048, 32), (2560, 40),
                                         (3200, 32), (4096, 32)])
def test_default_heads_are_the_released_sizes_of_the_width(width, heads):
    """The released GPT-B ... GPT-7B widths (meta tensors: no memory)."""
    shapes = {'cls_embedding.embedding_table.weight': (1001, width),
              'tok_embeddings.weight': (16384, width),
              'layers.0.attention.wqkv.weight': (3 * width, width),
              'layers.0.feed_forward.w1.weight': (64, width)}
    arch = infer_architecture(random_state(shapes, device='meta'),
                              'llamagen')
    assert (arch['num_heads'], arch['num_kv_heads']) == (heads, heads)
    assert (arch['num_classes'], arch['codebook_sizes']) == (1000, [16384])


def test_unreleased_width_without_heads_is_refused_in_full():
    state = gpt_state()
    state['cls_embedding.embedding_table.weight'] = torch.zeros(7, 48)
    sizes = ('{768: 12, 1024: 16, 1280: 20, 1536: 24, 2048: 32, 2560: 40, '
             '3200: 32, 4096: 32}')
    message = ('Width 48 ("cls_embedding.embedding_table.weight" (7, 48)) is '
               f'none of the released sizes {sizes}: pass --num-heads')
    with pytest.raises(ValueError) as info:
        infer_architecture(state, 'llamagen')
    assert str(info.value) == message


@pytest.mark.parametrize('heads', [0, -4, 3, 16, 5])
def test_heads_that_do_not_split_the_width_are_refused(heads):
    with pytest.raises(ValueError) as info:
        infer_architecture(gpt_state(), 'llamagen', heads)
    assert str(info.value) == (f'{heads} heads do not split width 32 into '
                               'heads of a multiple of 4 channels')


def test_a_width_heads_do_not_divide_is_refused_even_at_4_channels():
    """34 // 4 = 8 channels, a multiple of 4, but 34 % 4 = 2."""
    state = {'cls_embedding.embedding_table.weight': torch.zeros(3, 34)}
    with pytest.raises(ValueError, match='^4 heads do not split width 34 '):
        infer_architecture(state, 'llamagen', 4)


def test_one_head_of_the_whole_width_is_allowed():
    shapes = {'cls_embedding.embedding_table.weight': (3, 32),
              'tok_embeddings.weight': (8, 32),
              'layers.0.attention.wqkv.weight': (96, 32),
              'layers.0.feed_forward.w1.weight': (40, 32)}
    arch = infer_architecture(random_state(shapes), 'llamagen', 1)
    assert (arch['num_heads'], arch['num_kv_heads']) == (1, 1)


def qkv_message(rows, heads=4, head_dim=8):
    return (f'"layers.0.attention.wqkv.weight" has shape ({rows}, 32): not '
            f'(num heads + 2 kv heads) x head dim {head_dim} rows for width '
            f'32 and {heads} heads (wrong --num-heads?)')


@pytest.mark.parametrize('rows', [32, 16, 33, 40, 80])
def test_query_key_value_rows_that_give_no_kv_heads_are_refused(rows):
    """32 rows: no key/value heads; 16: fewer than the queries; 33 and 40:
    not whole heads; 80: 3 key/value heads, which 4 heads cannot share."""
    state = gpt_state()
    state['layers.0.attention.wqkv.weight'] = torch.zeros(rows, 32)
    with pytest.raises(ValueError) as info:
        infer_architecture(state, 'llamagen', 4)
    assert str(info.value) == qkv_message(rows)


@pytest.mark.parametrize('kv', [1, 2, 4])
def test_kv_heads_are_the_extra_rows_over_two_head_dims(kv):
    state = gpt_state()
    state['layers.0.attention.wqkv.weight'] = torch.zeros(32 + 16 * kv, 32)
    assert infer_architecture(state, 'llamagen', 4)['num_kv_heads'] == kv


def test_missing_sizes_are_named_with_what_they_give():
    cases = [
        ('cls_embedding.embedding_table.weight',
         'the class count and the width'),
        ('tok_embeddings.weight', 'the vocabulary size'),
        ('layers.0.attention.wqkv.weight', 'the key/value heads'),
        ('layers.0.feed_forward.w1.weight', 'the SwiGLU width')]
    for key, why in cases:
        state = gpt_state()
        del state[key]
        with pytest.raises(KeyError) as info:
            infer_architecture(state, 'llamagen', 4)
        assert info.value.args[0] == f'Missing key "{key}" (needed for {why})'
    state = far_state()
    del state['ar_head.0.feed_forward.w1.weight']
    with pytest.raises(KeyError, match='"ar_head.0.feed_forward.w1.weight" '
                       r'\(needed for the SwiGLU width\)'):
        infer_architecture(state, 'far', 4)


@pytest.mark.parametrize('key,shape,dims', [
    ('cls_embedding.embedding_table.weight', (7, 32, 1), 2),
    ('tok_embeddings.weight', (24,), 2),
    ('layers.0.attention.wqkv.weight', (64, 32, 1), 2),
    ('layers.0.feed_forward.w1.weight', (80,), 2)])
def test_tensors_of_another_rank_are_refused(key, shape, dims):
    state = gpt_state()
    state[key] = torch.zeros(shape)
    with pytest.raises(ValueError) as info:
        infer_architecture(state, 'llamagen', 4)
    assert str(info.value) == (f'"{key}" has shape {shape}, expected {dims} '
                               'dimensions')


def test_missing_blocks_are_named_in_full():
    state = {k: v for k, v in gpt_state().items()
             if not k.startswith('layers.')}
    with pytest.raises(KeyError) as info:
        infer_architecture(state, 'llamagen', 4)
    assert info.value.args[0] == ('Missing key "layers.0.attention.wqkv.'
                                  'weight": no transformer blocks')
    state = {k: v for k, v in far_state().items()
             if not k.startswith('ar_head.')}
    with pytest.raises(KeyError) as info:
        infer_architecture(state, 'far', 4)
    assert info.value.args[0] == ('Missing key "ar_head.0.attention.wqkv.'
                                  'weight": no FAR head blocks')


def test_one_block_and_one_head_block_are_enough():
    state = {k: v for k, v in far_state().items()
             if not k.startswith(('layers.1.', 'layers.2.', 'ar_head.1.'))}
    arch = infer_architecture(state, 'far', 4)
    assert (arch['num_layers'], arch['head_layers']) == (1, 1)


def test_the_llamagen_family_ignores_sub_token_tables():
    state = gpt_state()
    state['tok_embeddings_1.weight'] = torch.zeros(9, 32)
    assert infer_architecture(state, 'llamagen', 4)['codebook_sizes'] == [24]
    assert 'head_layers' not in infer_architecture(state, 'llamagen', 4)


def test_generator_config_is_the_released_model():
    assert generator_config(FAR, 5) == expected_config('far', 5)
    assert generator_config(GPT, 3) == expected_config('llamagen', 3)
    same = dict(FAR, num_kv_heads=4, head_num_kv_heads=4)
    cfg = generator_config(same, 5)
    assert 'num_kv_heads' not in cfg['backbone']
    assert 'num_kv_heads' not in cfg['head']
    assert cfg['codebook_sizes'] is not FAR['codebook_sizes']


def test_config_text_writes_whole_kv_heads():
    _, cfg = convert_far(far_state(), num_heads=4, grid_size=4)
    text = format_config(cfg)
    assert 'num_kv_heads=2,' in text and 'num_kv_heads=1,' in text
    assert '.0,' not in text.replace('_dropout=0.0,', '')


def test_convert_transformer_gives_the_typed_weights_and_config():
    state = far_state()
    weights, cfg = convert_transformer(state, 'far', num_heads=4,
                                       grid_size=4)
    assert cfg == expected_config('far', 4)
    assert set(weights) == FAR_KEYS
    assert weights['token_embed.tables.2.weight'] is \
        state['tok_embeddings_3.weight']
    assert weights['head.stack.blocks.1.ffn_norm.weight'] is \
        state['ar_head.1.ffn_norm.weight']
    assert weights['backbone.stack.blocks.2.attention.wo.weight'] is \
        state['layers.2.attention.wo.weight']


def test_default_grid_is_16_and_1_is_allowed():
    assert convert_transformer(gpt_state(), 'llamagen', num_heads=4
                               )[1]['grid_size'] == (16, 16)
    assert convert_far(far_state(), num_heads=4)[1]['grid_size'] == (16, 16)
    assert convert_llamagen_gpt(gpt_state(), num_heads=4
                                )[1]['grid_size'] == (16, 16)
    for convert, state, family in (
            (convert_far, far_state(), 'far'),
            (convert_llamagen_gpt, gpt_state(), 'llamagen')):
        assert convert(state, num_heads=4, grid_size=1)[1] == \
            expected_config(family, 1)
        with pytest.raises(ValueError) as info:
            convert(state, num_heads=4, grid_size=0)
        assert str(info.value) == 'grid_size must be >= 1, got 0'


def test_default_heads_reach_the_converters():
    shapes = {'cls_embedding.embedding_table.weight': (3, 1024),
              'tok_embeddings.weight': (8, 1024),
              'layers.0.attention.wqkv.weight': (3072, 1024),
              'layers.0.feed_forward.w1.weight': (64, 1024)}
    shapes.update({f'layers.0.{k}': s for k, s in block_shapes(
        'x', 16, 64, d=1024, head_dim=64).items() if 'wqkv' not in k})
    shapes = {k.replace('layers.0.x.', 'layers.0.'): v
              for k, v in shapes.items()}
    shapes.update({'norm.weight': (1024,), 'output.weight': (8, 1024)})
    state = random_state(shapes, device='meta')
    cfg = convert_llamagen_gpt(state)[1]
    assert cfg['backbone']['num_heads'] == 16
    far = {'cls_embedding.embedding_table.weight': (3, 1280),
           'tok_embeddings_1.weight': (8, 1280),
           'tok_embeddings_2.weight': (8, 1280),
           'aggregation_layer.weight': (1280, 2560),
           'aggregation_layer.bias': (1280,), 'norm.weight': (1280,),
           'output_1.weight': (8, 1280), 'output_2.weight': (8, 1280)}
    for prefix in ('layers.0', 'ar_head.0'):
        far.update(block_shapes(prefix, 20, 64, d=1280, head_dim=64))
    cfg = convert_far(random_state(far, device='meta'))[1]
    assert (cfg['backbone']['num_heads'], cfg['head']['num_heads']) == \
        (20, 20)


def test_missing_and_unexpected_keys_are_counted_and_listed():
    state = far_state()
    gone = [k for k in far_shapes() if k.startswith('layers.1.')]
    for key in gone:
        del state[key]
    with pytest.raises(KeyError) as info:
        convert_transformer(state, 'far', num_heads=4)
    assert info.value.args[0] == (f'Missing key "{gone[0]}" (7 missing in '
                                  f'all: {gone[:6]})')
    state = gpt_state()
    extra = [f'extra.{i}' for i in range(8)]
    state.update({k: torch.zeros(1) for k in extra})
    with pytest.raises(KeyError) as info:
        convert_transformer(state, 'llamagen', num_heads=4)
    assert info.value.args[0] == ('Unexpected key "extra.0" for a llamagen '
                                  'model of 1 sub-token(s) (8 unexpected in '
                                  f'all: {extra[:6]})')
    state = far_state()
    state['norm.bias'] = torch.zeros(1)
    with pytest.raises(KeyError, match='^\'Unexpected key "norm.bias" for a '
                       r'far model of 3 sub-token\(s\) \(1 unexpected'):
        convert_transformer(state, 'far', num_heads=4)


def test_a_wrong_shape_is_named_with_both_shapes():
    state = far_state()
    state['output_2.weight'] = torch.zeros(25, 32)
    with pytest.raises(ValueError) as info:
        convert_transformer(state, 'far', num_heads=4)
    assert str(info.value) == ('"output_2.weight" has shape (25, 32), the '
                               'model inferred from the checkpoint expects '
                               '(24, 32)')


def test_a_later_block_of_other_heads_is_named_with_whole_sizes():
    state = far_state()
    state['layers.1.attention.wqkv.weight'] = torch.zeros(48, 32)
    with pytest.raises(ValueError) as info:
        convert_transformer(state, 'far', num_heads=4)
    assert str(info.value) == ('"layers.1.attention.wqkv.weight" has shape '
                               '(48, 32), the model inferred from the '
                               'checkpoint expects (64, 32)')
    assert all(type(d) is int for shape in released_shapes(FAR).values()
               for d in shape)


def test_caches_rotary_tables_and_masks_are_dropped():
    caches = ['freqs_cis', 'layers.0.attention.kv_cache.k_cache',
              'ar_head.1.attention.kv_cache.v_cache', 'causal_mask',
              'layers.1.attention.causal_mask']
    state = far_state()
    state.update({k: torch.zeros(2) for k in caches})
    assert dropped_keys(state) == caches
    assert dropped_keys(far_state()) == []
    weights, _ = convert_far(state, num_heads=4, grid_size=4)
    assert len(weights) == len(far_shapes())
    assert FAMILIES['far'].dropped(state) == caches
    assert FAMILIES['llamagen'].dropped(
        dict(gpt_state(), freqs_cis=torch.zeros(1))) == ['freqs_cis']


# ------------------------------------------------------------- key tables
FAR_KEYS = {'class_embed.weight', 'head.norm.weight', 'token_embed.proj.weight',
            'token_embed.proj.bias'} | {
    f'{kind}.{g}.weight' for kind in ('token_embed.tables', 'head.outputs')
    for g in range(3)} | {
    f'backbone.stack.blocks.{n}.{p}' for n in range(3) for p in BLOCK} | {
    f'head.stack.blocks.{n}.{p}' for n in range(2) for p in BLOCK}


def typed_gpt_keys(family, g=3):
    keys = {'cls_embedding.embedding_table.weight': 'class_embed.weight',
            'norm.weight': 'head.norm.weight'}
    for p in BLOCK:
        keys[f'layers.0.{p}'] = f'backbone.stack.blocks.0.{p}'
        keys[f'layers.11.{p}'] = f'backbone.stack.blocks.11.{p}'
    if family == 'llamagen':
        keys['tok_embeddings.weight'] = 'token_embed.tables.0.weight'
        keys['output.weight'] = 'head.outputs.0.weight'
        return keys
    for i in range(g):
        keys[f'tok_embeddings_{i + 1}.weight'] = \
            f'token_embed.tables.{i}.weight'
        keys[f'output_{i + 1}.weight'] = f'head.outputs.{i}.weight'
    keys['aggregation_layer.weight'] = 'token_embed.proj.weight'
    keys['aggregation_layer.bias'] = 'token_embed.proj.bias'
    for p in BLOCK:
        keys[f'ar_head.1.{p}'] = f'head.stack.blocks.1.{p}'
    return keys


@pytest.mark.parametrize('family,g', [('llamagen', 1), ('far', 2),
                                      ('far', 3)])
def test_gpt_key_table_maps_both_ways(family, g):
    table = gpt_key_table(family, g)
    for released, ours in typed_gpt_keys(family, g).items():
        assert table.to_fqzoo(released) == ours
        assert table.to_released(ours) == released


@pytest.mark.parametrize('family,g,key,name', [
    ('llamagen', 1, 'tok_embeddings_1.weight',
     'LlamaGen class-conditional GPT'),
    ('llamagen', 1, 'aggregation_layer.weight',
     'LlamaGen class-conditional GPT'),
    ('far', 3, 'output_4.weight', 'FAR (3 sub-tokens)'),
    ('far', 2, 'output.weight', 'FAR (2 sub-tokens)'),
    ('far', 2, 'aggregation_layer.scale', 'FAR (2 sub-tokens)'),
    ('far', 2, 'layers.0.attention.bias', 'FAR (2 sub-tokens)'),
    ('far', 2, 'layers.0.attentionXwqkv.weight', 'FAR (2 sub-tokens)'),
    ('far', 2, 'ar_head.x.ffn_norm.weight', 'FAR (2 sub-tokens)')])
def test_keys_outside_a_gpt_table_are_refused_with_its_name(family, g, key,
                                                            name):
    with pytest.raises(KeyError) as info:
        gpt_key_table(family, g).to_fqzoo(key)
    assert info.value.args[0] == (f'Unexpected key "{key}": not part of the '
                                  f'released {name} layout')


def test_gpt_key_table_defaults_to_one_sub_token():
    table = gpt_key_table('far')
    assert table.name == 'FAR (1 sub-tokens)'
    assert table.to_fqzoo('tok_embeddings_1.weight') == \
        'token_embed.tables.0.weight'
    with pytest.raises(KeyError, match='tok_embeddings_2'):
        table.to_fqzoo('tok_embeddings_2.weight')


def test_gpt_key_tables_drop_caches():
    for table in (gpt_key_table('llamagen'), gpt_key_table('far', 2)):
        for key in ('freqs_cis', 'causal_mask', 'ar_head.0.freqs_cis',
                    'layers.3.attention.kv_cache.k_cache'):
            assert table.to_fqzoo(key) is None


# ---------------------------------------------------- family detection
@pytest.mark.parametrize('count,layout', [(1, '1 sub-tokens'), (2, 'dual'),
                                          (3, 'triple'),
                                          (4, '4 sub-tokens')])
def test_far_layout_is_named_by_its_sub_token_count(count, layout):
    state = {f'tok_embeddings_{g}.weight': torch.zeros(1)
             for g in range(1, count + 1)}
    assert detect_far(state) == layout
    assert detect_far({'tok_embeddings_2.weight': torch.zeros(1)}) is None
    assert detect_far(gpt_state()) is None


def test_llamagen_gpt_layout_and_t2i_refusal():
    assert detect_llamagen_gpt(gpt_state()) == 'c2i'
    assert detect_llamagen_gpt(far_state()) is None
    t2i = dict(gpt_state(), **{'cls_embedding.cap_proj.fc1.weight':
                               torch.zeros(2, 2)})
    assert detect_llamagen_gpt(t2i) == 't2i'
    with pytest.raises(KeyError) as info:
        convert_llamagen_gpt(t2i, num_heads=4)
    assert info.value.args[0] == (
        'Unexpected key "cls_embedding.cap_proj.*": a text-conditional t2i '
        'checkpoint (only the class-conditional c2i GPTs are supported)')
    weights, cfg = convert_llamagen_gpt(gpt_state(), num_heads=4,
                                        grid_size=2)
    assert cfg == expected_config('llamagen', 2)
    assert set(weights) == {
        'class_embed.weight', 'head.norm.weight', 'head.outputs.0.weight',
        'token_embed.tables.0.weight'} | {
        f'backbone.stack.blocks.{n}.{p}' for n in range(2) for p in BLOCK}


# ------------------------------------------------------------- dispatch
def test_get_family_names_the_known_families():
    assert get_family('far') is FAMILIES['far']
    with pytest.raises(ValueError) as info:
        get_family('gpt')
    assert str(info.value) == ("family must be one of ['far', 'fqgan', "
                               "'llamagen', 'llamagen_vq'], got 'gpt'")


def test_detect_family_with_and_without_a_family():
    assert detect_family(far_state()) == ('far', 'triple')
    assert detect_family(far_state(), 'far') == ('far', 'triple')
    assert detect_family(gpt_state(), 'llamagen') == ('llamagen', 'c2i')


SEVEN = {f'k{i}.weight': torch.zeros(1) for i in range(7, 0, -1)}
FIRST_SIX = str([f'k{i}.weight' for i in range(1, 7)])


def test_another_family_is_named_with_its_tool():
    with pytest.raises(InputError) as info:
        detect_family(far_state(), 'llamagen')
    assert str(info.value) == ('a far checkpoint, not llamagen: convert it '
                               f'with {FAR_TOOL}')
    with pytest.raises(InputError) as info:
        detect_family(gpt_state(), 'far')
    assert str(info.value) == ('a llamagen checkpoint, not far: convert it '
                               f'with {GPT_TOOL}')


def test_a_state_of_no_family_is_refused_with_its_first_keys():
    with pytest.raises(InputKeyError) as info:
        detect_family(SEVEN, 'llamagen')
    assert info.value.args[0] == (
        'Missing key "tok_embeddings.weight" (LlamaGen GPT): not a released '
        f'llamagen checkpoint (keys: {FIRST_SIX})')
    with pytest.raises(InputKeyError) as info:
        detect_family(SEVEN)
    assert info.value.args[0] == (
        'No released layout recognised: none of "quantize_vis.embedding.'
        'weight" (FQGAN), "quantize.embedding.weight" with "quant_conv.'
        'weight" (LlamaGen VQ), "tok_embeddings.weight" (LlamaGen GPT), '
        f'"tok_embeddings_1.weight" (FAR) (keys: {FIRST_SIX})')
    assert isinstance(info.value, KeyError)


def test_detect_and_convert_passes_only_the_family_options():
    state = {f'module._orig_mod.{k}': v for k, v in far_state().items()}
    family, weights, cfg = detect_and_convert(state, num_heads=4,
                                              grid_size=5, config='x.py')
    assert family == 'far' and cfg == expected_config('far', 5)
    assert set(weights) == FAR_KEYS
    assert torch.equal(weights['head.outputs.2.weight'],
                       state['module._orig_mod.output_3.weight'])
    out = detect_and_convert(gpt_state(), 'llamagen', num_heads=4)
    assert (out.family, out.config) == ('llamagen',
                                        expected_config('llamagen', 16))
    assert out.state_dict['head.outputs.0.weight'].shape == (24, 32)
    with pytest.raises(TypeError) as info:
        detect_and_convert(gpt_state(), heads=4, size=3)
    assert str(info.value) == (
        "Unknown conversion option(s) ['heads', 'size']: the converters take "
        "['config', 'grid_size', 'num_heads']")


# ---------------------------------------------------------------- model
def four_linears():
    return nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 3), nn.Linear(3, 3),
                         nn.BatchNorm1d(3))


def test_check_state_names_extra_keys_both_ways():
    model = four_linears()
    state = dict(model.state_dict())
    extra = [f'x{i}' for i in range(8)]
    state.update({k: torch.zeros(1) for k in extra})
    with pytest.raises(KeyError) as info:
        check_state(state, model, 'L')
    assert info.value.args[0] == ('Unexpected key "x0": not in the fqzoo '
                                  'model of the L layout (8 such keys: '
                                  f'{extra[:6]})')
    with pytest.raises(KeyError) as info:
        check_state(state, model, 'L', lambda k: 'rel.' + k)
    assert info.value.args[0].startswith('Unexpected key "rel.x0" (fqzoo '
                                         '"x0"): not in')


def test_check_state_names_a_wrong_shape():
    model = four_linears()
    state = dict(model.state_dict())
    state['1.weight'] = torch.zeros(3, 4)
    with pytest.raises(ValueError) as info:
        check_state(state, model, 'L', lambda k: 'rel.' + k)
    assert str(info.value) == ('"rel.1.weight" (fqzoo "1.weight") has shape '
                               '(3, 4), the fqzoo model of the L layout '
                               'expects (3, 3)')


def test_check_state_counts_missing_parameters_and_returns_buffers():
    model = four_linears()
    with pytest.raises(KeyError) as info:
        check_state({'3.bias': torch.zeros(3)}, model, 'L')
    missing = ['0.weight', '0.bias', '1.weight', '1.bias', '2.weight',
               '2.bias', '3.weight']
    assert info.value.args[0] == ('Missing key "0.weight" of the L layout '
                                  f'(7 missing: {missing[:6]})')
    params = {k: v for k, v in model.named_parameters()}
    assert check_state(params, model, 'L') == [
        '3.running_mean', '3.running_var', '3.num_batches_tracked']
    assert check_state(model.state_dict(), model, 'L') == []


def test_build_model_builds_on_the_meta_device_by_default():
    gen = build_model(expected_config('far', 4))
    assert type(gen).__name__ == 'AutoregressiveGenerator'
    assert all(p.is_meta for p in gen.parameters())
    assert not any(p.is_meta for p in build_model(
        expected_config('llamagen', 2), 'cpu').parameters())
    cfg = release_vq_config()
    tok = build_model(cfg)
    assert type(tok).__name__ == 'ImageTokenizer'
    assert all(p.is_meta for p in tok.parameters())


def test_build_model_builds_generator_parts_from_generators():
    """A GENERATORS-only type (not in MODELS) is built from GENERATORS,
    under fqzoo's default scope (as the written configs say)."""
    backbone = build_model(dict(type='LlamaGenBackbone', width=32,
                                num_layers=1, num_heads=4,
                                grid_size=(2, 2)))
    assert type(backbone).__name__ == 'LlamaGenBackbone'
    assert all(p.is_meta for p in backbone.parameters())
    assert DefaultScope.get_current_instance().scope_name == 'fqzoo'


def test_build_model_leaves_the_config_as_it_was():
    import copy
    for cfg in (expected_config('far', 4), release_vq_config()):
        before = copy.deepcopy(cfg)
        build_model(cfg)
        build_model(cfg, 'cpu')
        assert cfg == before


def release_vq_config():
    return detect_and_convert(release.vq_state())[2]


def test_complete_state_adds_the_initial_buffers():
    weights, cfg = detect_and_convert(release.vq_state())[1:]
    out, added = complete_state(weights, cfg, 'llamagen_vq')
    fresh = build_model(cfg, 'cpu').state_dict()
    assert added and added == [k for k in fresh if k not in weights]
    assert set(out) == set(fresh)
    for key in added:
        assert not out[key].is_meta
        assert torch.equal(out[key], fresh[key])
    for key in weights:
        assert out[key] is weights[key]
    full, none = complete_state(out, cfg, 'llamagen_vq')
    assert none == [] and full == out
    gen, gen_cfg = convert_far(far_state(), num_heads=4, grid_size=4)
    assert complete_state(gen, gen_cfg, 'far triple') == (gen, [])
    bad = dict(gen, **{'head.outputs.0.weight': torch.zeros(16, 33)})
    with pytest.raises(ValueError, match='of the far triple layout'):
        complete_state(bad, gen_cfg, 'far triple')


# ---------------------------------------------------------------- files
def test_select_weights_entries_in_order():
    t = torch.zeros(1)
    both = {'model': {'a': t}, 'module': {'b': t}, 'state_dict': {'c': t},
            'ema': {'e': t}}
    assert select_weights(both, 'f.pt') == ({'a': t}, 'model')
    assert select_weights(both, 'f.pt', True) == ({'e': t}, 'ema')
    del both['model']
    assert select_weights(both, 'f.pt') == ({'b': t}, 'module')
    del both['module']
    assert select_weights(both, 'f.pt') == ({'c': t}, 'state_dict')
    bare = {'w': t, 'b': t}
    assert select_weights(bare, 'f.pt') == (bare, '(bare state dict)')


def test_select_weights_refusals_in_full():
    with pytest.raises(InputError) as info:
        select_weights([1], 'f.pt')
    assert str(info.value) == 'f.pt holds a list, not a checkpoint dict'
    with pytest.raises(InputKeyError) as info:
        select_weights({}, 'f.pt')
    assert info.value.args[0] == ('f.pt has no model / module / state_dict '
                                  'entry of weights (entries: [])')
    many = {f'k{i:02d}': torch.zeros(1) for i in range(12, 0, -1)}
    with pytest.raises(InputKeyError) as info:
        select_weights(many, 'f.pt', ema=True)
    names = [f'k{i:02d}' for i in range(1, 11)]
    assert info.value.args[0] == ('f.pt has no ema entry of weights '
                                  f'(entries: {names})')
    with pytest.raises(InputKeyError, match=r"model / module / state_dict "
                       r"entry of weights \(entries: \['steps', 'w'\]\)"):
        select_weights({'w': torch.zeros(1), 'steps': 3}, 'f.pt')
    with pytest.raises(InputError) as info:
        select_weights({'model': {'w': torch.zeros(1), 'n': 'x'}}, 'f.pt')
    assert str(info.value) == ('f.pt entry model: "n" is of type str, not a '
                               'tensor')


def test_load_checkpoint_file_reads_the_saved_arguments(tmp_path):
    path = tmp_path / 'c.pt'
    torch.save({'model': {'w': torch.ones(2)},
                'args': Namespace(gpt_model='GPT-B')}, path)
    out = load_checkpoint_file(path)
    assert out['args'].gpt_model == 'GPT-B'
    assert torch.equal(out['model']['w'], torch.ones(2))


def test_token_layout_of_generators_and_tokenizers():
    assert token_layout('far', expected_config('far', 5)) == \
        token_layout('far', expected_config('far', 5), [64])
    layout = token_layout('far', expected_config('far', 5))
    assert layout['codebook_sizes'] == [16, 24, 20]
    assert layout['grid'] == [5, 5]
    cfg = release_vq_config()
    assert token_layout('llamagen_vq', cfg)['grids'] == {'256x256': [128, 128]}
    assert token_layout('llamagen_vq', cfg, [16, 8])['grids'] == {
        '16x16': [8, 8], '8x8': [4, 4]}
    assert token_layout('llamagen_vq', cfg)['codebook_sizes'] == [64]


def test_token_layout_default_sizes_come_from_the_model_config():
    """FQGAN-Dual ds16: adapters fit a 16 x 16 grid, 4 halvings: 256 px."""
    cfg = model_config(REPO / 'configs' / '_base_' / 'models' /
                       'fqgan_dual_ds16.py')
    layout = token_layout('fqgan', cfg)
    assert layout['grids'] == {'256x256': [16, 16]}
    assert layout['downsample_factor'] == 16
    assert token_layout('fqgan', cfg, [128])['grids'] == {'128x128': [8, 8]}


def write_far(tmp_path, state, **checkpoint):
    src = tmp_path / 'release.pt'
    torch.save(dict(checkpoint, model=state), src)
    return src


def test_convert_released_meta_in_full(tmp_path):
    state = far_state()
    state['norm.weight'] = state['norm.weight'].double()
    wrapped = {f'module.{k}': v for k, v in state.items()}
    wrapped['module.freqs_cis'] = torch.zeros(3, 2)
    src = tmp_path / 'release.pt'
    torch.save({'model': {k: v + 1 for k, v in state.items()},
                'ema': wrapped, 'args': Namespace(ema=True)}, src)
    checkpoint, cfg = convert_released(src, ema=True, num_heads=4,
                                       grid_size=4)
    assert cfg == expected_config('far', 4)
    meta = checkpoint['meta']
    layout = meta.pop('token_layout')
    assert layout['codebook_sizes'] == [16, 24, 20]
    assert layout['grid'] == [4, 4]
    assert meta == dict(
        source='showlab/FQGAN', family='far', layout='triple',
        src='release.pt', sha256=hashlib.sha256(src.read_bytes()).hexdigest(),
        entry='ema', stripped_prefixes=['module.'], dropped=['freqs_cis'],
        buffers_initialised=[], dtypes=['torch.float32', 'torch.float64'],
        model=expected_config('far', 4), converter=FAR_TOOL)
    assert set(checkpoint) == {'state_dict', 'meta'}
    weights = checkpoint['state_dict']
    assert torch.equal(weights['token_embed.proj.bias'],
                       state['aggregation_layer.bias'])
    assert len(weights) == len(state)
    model_entry = convert_released(src, 'far', num_heads=4)[0]
    assert model_entry['meta']['entry'] == 'model'
    assert torch.equal(model_entry['state_dict']['token_embed.proj.bias'],
                       state['aggregation_layer.bias'] + 1)


def test_convert_released_records_the_initialised_buffers(tmp_path):
    src = tmp_path / 'vq.pt'
    torch.save({'state_dict': release.vq_state()}, src)
    checkpoint, cfg = convert_released(src, image_sizes=[16])
    meta = checkpoint['meta']
    fresh = build_model(cfg, 'cpu').state_dict()
    weights = detect_and_convert(release.vq_state())[1]
    assert meta['buffers_initialised'] and meta['buffers_initialised'] == [
        k for k in fresh if k not in weights]
    assert set(checkpoint['state_dict']) == set(fresh)
    assert (meta['family'], meta['entry']) == ('llamagen_vq', 'state_dict')
    assert meta['token_layout']['grids'] == {'16x16': [8, 8]}


def test_convert_released_refusals_name_file_entry_and_kind(tmp_path):
    state = far_state()
    del state['layers.2.attention.wo.weight']
    src = write_far(tmp_path, state)
    with pytest.raises(InputKeyError) as info:
        convert_released(src, num_heads=4)
    assert info.value.args[0] == (
        f'{src} (model): Missing key "layers.2.attention.wo.weight" (1 '
        "missing in all: ['layers.2.attention.wo.weight'])")
    state = far_state()
    state['output_1.weight'] = torch.zeros(16, 31)
    src = write_far(tmp_path, state)
    with pytest.raises(InputError) as info:
        convert_released(src, num_heads=4)
    assert not isinstance(info.value, KeyError)
    assert str(info.value) == (
        f'{src} (model): "output_1.weight" has shape (16, 31), the model '
        'inferred from the checkpoint expects (16, 32)')
    src = write_far(tmp_path, far_state())
    with pytest.raises(InputError) as info:
        convert_released(src, 'llamagen', num_heads=4)
    assert str(info.value) == (f'{src} (model): a far checkpoint, not '
                               f'llamagen: convert it with {FAR_TOOL}')
    torch.save([far_state()], src)
    with pytest.raises(InputError) as info:
        convert_released(src, num_heads=4)
    assert str(info.value) == f'{src} holds a list, not a checkpoint dict'


def test_convert_released_checks_the_built_model_naming_the_layout(
        tmp_path):
    """A FAR release of one sub-token has an aggregation layer that the
    fqzoo model of one sub-token (no projection) lacks."""
    state = {k: v for k, v in far_state().items()
             if not k.startswith(('tok_embeddings_2', 'tok_embeddings_3',
                                  'output_2', 'output_3'))}
    state['aggregation_layer.weight'] = torch.zeros(32, 32)
    src = write_far(tmp_path, state)
    with pytest.raises(InputKeyError) as info:
        convert_released(src, num_heads=4)
    assert info.value.args[0] == (
        f'{src} (model): Unexpected key "token_embed.proj.weight": not in '
        'the fqzoo model of the far 1 sub-tokens layout (2 such keys: '
        "['token_embed.proj.weight', 'token_embed.proj.bias'])")


def test_convert_released_converts_as_the_family_asked(tmp_path):
    """A FAR release with a stray LlamaGen token table is refused as a
    FAR model (not converted as the LlamaGen GPT tried first)."""
    state = dict(far_state(), **{'tok_embeddings.weight':
                                 torch.zeros(16, 32)})
    src = write_far(tmp_path, state)
    with pytest.raises(InputKeyError) as info:
        convert_released(src, 'far', num_heads=4)
    assert info.value.args[0] == (
        f'{src} (model): Unexpected key "tok_embeddings.weight" for a far '
        "model of 3 sub-token(s) (1 unexpected in all: "
        "['tok_embeddings.weight'])")


def test_format_config_inline_up_to_70_columns():
    assert format_config(dict(a=1, b='x', c=(16, 16), d=None)) == \
        "dict(a=1, b='x', c=(16, 16), d=None)"
    assert format_config([dict(a=1), dict(b=[2])]) == \
        '[dict(a=1), dict(b=[2])]'
    assert format_config([1, 2]) == '[1, 2]'
    assert format_config((dict(a=1),)) == "({'a': 1},)"
    assert format_config('x') == "'x'"
    assert format_config(dict(k='x' * 60)) == f"dict(k='{'x' * 60}')"
    assert format_config(dict(k='x' * 61)) == f"dict(\n    k='{'x' * 61}')"
    assert format_config(dict(k='x' * 56), 4) == f"dict(k='{'x' * 56}')"
    assert format_config(dict(k='x' * 57), 4) == \
        f"dict(\n        k='{'x' * 57}')"


def test_format_config_nests_at_four_more_columns():
    assert format_config(dict(m=dict(k='x' * 56), n=2)) == (
        f"dict(\n    m=dict(k='{'x' * 56}'),\n    n=2)")
    assert format_config(dict(m=dict(k='x' * 57))) == (
        f"dict(\n    m=dict(\n        k='{'x' * 57}'))")
    assert format_config([dict(k='x' * 56), 1]) == (
        f"[\n    dict(k='{'x' * 56}'),\n    1]")
    assert format_config([dict(k='x' * 57)]) == (
        f"[\n    dict(\n        k='{'x' * 57}')]")


class TwoLines:
    def __repr__(self):
        return 'one\ntwo'


def test_format_config_puts_a_multi_line_value_on_its_own_lines():
    assert format_config(dict(a=TwoLines())) == 'dict(\n    a=one\ntwo)'
    assert format_config([dict(a=1), TwoLines()]) == \
        '[\n    dict(a=1),\n    one\ntwo]'


def test_config_text_of_a_generator_and_a_tokenizer(tmp_path):
    assert config_text(dict(a=1), tmp_path / 'sub' / 'r.pt', 'far') == (
        f'# r.pt (showlab/FQGAN) converted by {FAR_TOOL}.\n'
        '# Dropouts are those of the released training scripts; the token '
        "grid\n# is the converter's --grid-size.\n"
        "default_scope = 'fqzoo'\n"
        'model = dict(a=1)\n')
    assert config_text(dict(b=[1]), 'vq.pt', 'llamagen_vq') == (
        '# vq.pt (FoundationVision/LlamaGen) converted by tools/convert/'
        'llamagen_vq.py.\n'
        '# Inference only: no discriminator, no perceptual loss.\n'
        "default_scope = 'fqzoo'\n"
        'model = dict(b=[1])\n')


def test_write_converted_makes_folders_and_writes_both(tmp_path):
    src = write_far(tmp_path, far_state())
    dst = tmp_path / 'a' / 'b' / 'gen.pth'
    cfg_path = tmp_path / 'c' / 'd' / 'gen.py'
    meta = write_converted(src, dst, cfg_path, None, num_heads=4,
                           grid_size=3)
    saved = torch.load(dst, weights_only=True)
    assert saved['meta'] == meta
    assert meta['family'] == 'far' and meta['model']['grid_size'] == (3, 3)
    assert cfg_path.read_text() == config_text(expected_config('far', 3),
                                               src, 'far')
    assert torch.equal(saved['state_dict']['head.outputs.1.weight'],
                       far_state()['output_2.weight'])
    assert sorted(p.name for p in dst.parent.iterdir()) == ['gen.pth']
    again = write_converted(src, dst, cfg_path, 'far', num_heads=4,
                            grid_size=2)
    assert again['model']['grid_size'] == (2, 2)
    assert 'grid_size=(2, 2)' in cfg_path.read_text()
    with pytest.raises(InputError, match='not llamagen'):
        write_converted(src, tmp_path / 'x.pth', tmp_path / 'x.py',
                        'llamagen', num_heads=4)
    assert not (tmp_path / 'x.pth').exists()


def test_write_converted_writes_under_the_hidden_name_of_its_own_file(
        tmp_path, monkeypatch):
    """An interrupted write leaves ``.gen.pth.tmp`` (named after its file,
    so two conversions into one folder never share it), never ``gen.pth``.
    """
    def interrupted(tmp, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(files, 'commit_file', interrupted)
    src = write_far(tmp_path, far_state())
    dst = tmp_path / 'out' / 'gen.pth'
    with pytest.raises(KeyboardInterrupt):
        write_converted(src, dst, tmp_path / 'out' / 'gen.py', None,
                        num_heads=4, grid_size=3)
    assert sorted(p.name for p in dst.parent.iterdir()) == ['.gen.pth.tmp']


def test_summary_lines():
    meta = dict(src='r.pt', family='far', layout='triple',
                source='showlab/FQGAN', entry='ema',
                token_layout=dict(codebook_sizes=[16, 24, 20], grids={},
                                  grid=[4, 4]),
                dropped=['freqs_cis', 'causal_mask'],
                buffers_initialised=[])
    assert summary(meta) == [
        'r.pt: far triple (showlab/FQGAN), entry ema',
        'codebooks [16, 24, 20], downsample None, grids [4, 4]',
        'dropped 2 entries, 0 fqzoo buffers at their initial values']
    meta.update(dropped=[], buffers_initialised=['a', 'b', 'c'],
                token_layout=dict(codebook_sizes=[64], downsample_factor=2,
                                  grids={'16x16': [8, 8]}))
    assert summary(meta)[1:] == [
        "codebooks [64], downsample 2, grids {'16x16': [8, 8]}",
        'dropped 0 entries, 3 fqzoo buffers at their initial values']
    meta.update(buffers_initialised=[])
    assert len(summary(meta)) == 2
