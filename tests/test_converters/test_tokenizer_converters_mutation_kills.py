"""The key tables and the tokenizer converters (``fqzoo.converters.keys``,
``fqgan``, ``llamagen_vq``): behaviour that mutation testing showed no test
pinned down (docs/testing.md lists the mutants these tests kill).

References are typed by hand: key pairs read off the released layouts and
the module docstrings (the key-map tables), messages in full, downsample
factors ``2 ** (levels - 1)``, the paper's 256 px configs, architectures
read off shapes chosen here (every field a different number). State dicts
are synthetic: ``llamagen_release.vq_shapes`` (LlamaGen's layout), or an
fqzoo model's parameters under the released keys typed in the docstring.
"""
import llamagen_release as release
import pytest
import torch
from mmengine.config import Config

from fqzoo.converters import fqgan as fq
from fqzoo.converters import llamagen_vq as lv
from fqzoo.converters.keys import (
    KeyTable,
    count_indexed,
    strip_prefixes,
    tensor,
)
from fqzoo.converters.model import build_model

REPO = fq.REPO


def meta(shapes):
    return {k: torch.empty(s, device='meta') for k, s in shapes.items()}


def message(err):
    """The text a KeyError / ValueError was raised with."""
    return err.value.args[0]


# --------------------------------------------------------------- keys.py

def test_unknown_template_field_is_named_with_the_known_ones():
    with pytest.raises(ValueError) as err:
        KeyTable('demo', [('a.{x}.b', 'b.{x}')])
    assert message(err) == ("Template 'a.{x}.b': unknown field {x} "
                            "(known: ['n', 'rest'])")
    with pytest.raises(ValueError) as err:
        KeyTable('demo', [('a.{n}', 'b.{p}')], fields={'q': 'x'})
    assert message(err) == ("Template 'b.{p}': unknown field {p} "
                            "(known: ['n', 'q', 'rest'])")


def test_templates_match_whole_keys_with_literal_dots():
    table = KeyTable('demo', [('p.{n}.q.{rest}', 'r.{rest}.s.{n}'),
                              ('a.{n}.b', 'x_{n}')])
    assert table.to_fqzoo('p.3.q.w.bias') == 'r.w.bias.s.3'
    assert table.to_fqzoo('a.12.b') == 'x_12'
    assert table.to_released('r.w.bias.s.3') == 'p.3.q.w.bias'
    assert table.to_released('x_12') == 'a.12.b'
    for key in ('aX12.b', 'a.12Xb', 'a.12.bc', 'za.12.b', 'a.x.b',
                'a..b', 'pX3.q.w'):
        with pytest.raises(KeyError) as err:
            table.to_fqzoo(key)
        assert message(err) == (f'Unexpected key "{key}": not part of the '
                                'released demo layout')
    for key in ('x_12b', 'r.w.s.3x', 'x_a'):
        with pytest.raises(KeyError) as err:
            table.to_released(key)
        assert message(err) == (f'No released counterpart of "{key}" in '
                                'the demo layout')


def test_a_table_adds_its_fields_to_n_and_rest():
    table = KeyTable('blocks', [('blk.{n}.{param}', 'blocks.{n}.{param}'),
                                ('head.{rest}', 'out.{rest}')],
                     fields={'param': 'weight|bias'})
    assert table.name == 'blocks'
    assert table.fields == {'n': r'\d+', 'rest': '.+',
                            'param': 'weight|bias'}
    assert table.rules == [('blk.{n}.{param}', 'blocks.{n}.{param}'),
                           ('head.{rest}', 'out.{rest}')]
    assert table.to_fqzoo('blk.4.bias') == 'blocks.4.bias'
    assert table.to_released('blocks.4.weight') == 'blk.4.weight'
    assert table.to_fqzoo('head.fc.weight') == 'out.fc.weight'
    with pytest.raises(KeyError, match='blk.4.scale'):
        table.to_fqzoo('blk.4.scale')
    plain = KeyTable('plain', iter([('a.{n}', 'b.{n}')]))
    assert plain.fields == {'n': r'\d+', 'rest': '.+'}
    assert plain.rules == [('a.{n}', 'b.{n}')]
    assert plain.dropped == [] and not plain.is_dropped('a.1')


def test_dropped_keys_match_whole_keys_before_any_rule():
    table = KeyTable('demo', [('{rest}', 'all.{rest}')],
                     dropped=[r'quantize\.codebook_used', r'cache\.\d+'])
    assert table.is_dropped('quantize.codebook_used')
    assert table.is_dropped('cache.12')
    assert table.to_fqzoo('quantize.codebook_used') is None
    assert table.to_fqzoo('cache.3') is None
    for key in ('quantize.codebook_used.x', 'xquantize.codebook_used',
                'quantizeXcodebook_used', 'cache.x'):
        assert not table.is_dropped(key), key
        assert table.to_fqzoo(key) == f'all.{key}'


def test_the_first_matching_rule_wins_both_ways():
    table = KeyTable('demo', [('a.special', 'b.one'),
                              ('a.{rest}', 'b.{rest}'),
                              ('c.{rest}', 'b.{rest}')])
    assert table.to_fqzoo('a.special') == 'b.one'
    assert table.to_fqzoo('a.other') == 'b.other'
    assert table.to_fqzoo('c.other') == 'b.other'
    assert table.to_released('b.one') == 'a.special'
    assert table.to_released('b.other') == 'a.other'


def test_convert_moves_tensors_and_lists_dropped_keys_in_order():
    table = KeyTable('demo', [('a.{rest}', 'x.{rest}'),
                              ('b.{rest}', 'y.{rest}')],
                     dropped=[r'used\.\d'])
    t = [torch.full((2,), float(i)) for i in range(5)]
    state = {'used.1': t[0], 'a.w': t[1], 'used.0': t[2], 'b.w': t[3],
             'a.v': t[4]}
    out, dropped = table.convert(state)
    assert dropped == ['used.1', 'used.0']
    assert list(out) == ['x.w', 'y.w', 'x.v']
    assert out['x.w'] is t[1] and out['y.w'] is t[3] and out['x.v'] is t[4]
    assert table.convert({}) == ({}, [])


def test_two_released_keys_for_one_fqzoo_key_are_named():
    table = KeyTable('demo', [('a.{rest}', 'x.{rest}'),
                              ('b.{rest}', 'x.{rest}')])
    state = {'a.w': torch.ones(1), 'a.v': torch.ones(1),
             'b.w': torch.zeros(1)}
    with pytest.raises(KeyError) as err:
        table.convert(state)
    assert message(err) == ('"a.w" and "b.w" both map to "x.w" in the demo '
                            'layout')


def test_strip_prefixes_removes_nested_training_prefixes_only_in_front():
    t = [torch.full((1,), float(i)) for i in range(5)]
    out, removed = strip_prefixes({
        'module._orig_mod.a': t[0], 'b': t[1], '_orig_mod.module.c': t[2],
        'x.module.d': t[3], 'module.module.e': t[4]})
    assert list(out) == ['a', 'b', 'c', 'x.module.d', 'e']
    assert all(out[k] is v for k, v in zip(out, t))
    assert removed == ['_orig_mod.', 'module.']
    assert strip_prefixes({'_orig_mod.z': t[0]}) == ({'z': t[0]},
                                                     ['_orig_mod.'])
    assert strip_prefixes({'z': t[0]}) == ({'z': t[0]}, [])


def test_count_indexed_is_one_plus_the_largest_whole_key_number():
    state = dict.fromkeys(['blk.9.w', 'blk.10.w', 'blk.2.b', 'xblk.50.w',
                           'blk.70', 'other.80.w'])
    assert count_indexed(state, r'blk\.(\d+)\..*') == 11
    assert count_indexed(state, r'blk\.(\d+)') == 71
    assert count_indexed(state, r'none\.(\d+)\..*') == 0
    assert count_indexed({}, r'blk\.(\d+)\..*') == 0
    assert count_indexed({'blk.0.w': None}, r'blk\.(\d+)\..*') == 1


def test_tensor_checks_presence_and_rank():
    value = torch.zeros(2, 3)
    assert tensor({'a': value}, 'a', 'the width', 2) is value
    with pytest.raises(KeyError) as err:
        tensor({'a': value}, 'b', 'the width', 2)
    assert message(err) == 'Missing key "b" (needed for the width)'
    with pytest.raises(ValueError) as err:
        tensor({'a': value}, 'a', 'the width', 4)
    assert message(err) == '"a" has shape (2, 3), expected 4 dimensions'


# -------------------------------------------------------------- fqgan.py

def test_fqgan_table_needs_one_regularizer_per_prediction_head():
    for variant, indices, heads in (('triple', [1], 2), ('dual', [1, 2], 1),
                                    ('dual', [], 1)):
        with pytest.raises(ValueError) as err:
            fq.fqgan_key_table(variant, indices)
        assert message(err) == (
            f'The {variant} variant has {heads} feature prediction heads, '
            f'the config {len(indices)} SemanticRegularizer entries')


# Typed from the module docstring's key map: Triple branches vis / sem_mid /
# sem_high are 0 / 1 / 2, the prediction heads belong to regularizers 2
# and 5 (in order).
TRIPLE = {
    'encoder.conv_in.weight': 'encoder.conv_in.weight',
    'encoder.conv_blocks.1.res.0.conv1.weight':
        'encoder.conv_blocks.1.res.0.conv1.weight',
    'encoder.mid.1.q.bias': 'encoder.mid.1.q.bias',
    'encoder.norm_out_vis.weight': 'heads.0.norm_out.weight',
    'encoder.conv_out_sem_high.bias': 'heads.2.conv_out.bias',
    'encoder.visual_head.0.ln_pre.weight': 'heads.0.ln_pre.weight',
    'encoder.semantic_head_mid.0.transformer.1.ln_1.bias':
        'heads.1.blocks.1.norm1.bias',
    'encoder.semantic_head_high.0.transformer.3.mlp.c_proj.weight':
        'heads.2.blocks.3.mlp.fc2.weight',
    'encoder.semantic_head_high.0.transformer.0.attn.in_proj_weight':
        'heads.2.blocks.0.attn.in_proj_weight',
    'quant_conv_vis.weight': 'quant_convs.0.weight',
    'quant_conv_sem_mid.bias': 'quant_convs.1.bias',
    'quantize_sem_high.embedding.weight':
        'quantizer.subs.2.embedding.weight',
    'mid_sem_feat_pred.transformer.0.ln_2.weight':
        'regularizers.2.head.blocks.0.norm2.weight',
    'mid_sem_feat_pred.upscale.2.bias': 'regularizers.2.head.proj_in.fc2.bias',
    'high_sem_feat_pred.upscale.0.weight':
        'regularizers.5.head.proj_in.fc1.weight',
    'high_sem_feat_pred.transformer.1.mlp.c_fc.bias':
        'regularizers.5.head.blocks.1.mlp.fc1.bias',
    'high_sem_feat_pred.class_embedding':
        'regularizers.5.head.class_embedding',
    'post_quant_conv.bias': 'post_quant_conv.bias',
    'decoder.conv_blocks.0.attn.1.v.weight':
        'decoder.conv_blocks.0.attn.1.v.weight',
}


def test_fqgan_triple_table_with_other_regularizer_indices():
    table = fq.fqgan_key_table('triple', [2, 5])
    assert table.name == 'FQGAN triple'
    for released, ours in TRIPLE.items():
        assert table.to_fqzoo(released) == ours, released
        assert table.to_released(ours) == released, ours
    for branch in ('vis', 'sem_mid', 'sem_high'):
        assert table.to_fqzoo(f'quantize_{branch}.codebook_used') is None
    with pytest.raises(KeyError) as err:
        table.to_fqzoo('quantize_sem_high.codebook_usage')
    assert message(err) == ('Unexpected key "quantize_sem_high.codebook_'
                            'usage": not part of the released FQGAN '
                            'triple layout')
    assert fq.fqgan_key_table('dual', [3]).to_fqzoo(
        'feat_pred_head.transformer.0.mlp.c_fc.weight') == \
        'regularizers.3.head.blocks.0.mlp.fc1.weight'


def test_detect_fqgan_needs_vis_with_sem_or_sem_mid():
    def keys(*branches):
        return dict.fromkeys(f'quantize_{b}.embedding.weight'
                             for b in branches)

    assert fq.detect_fqgan(keys('vis', 'sem')) == 'dual'
    assert fq.detect_fqgan(keys('vis', 'sem_mid', 'sem_high')) == 'triple'
    assert fq.detect_fqgan(keys('vis', 'sem_mid')) == 'triple'
    assert fq.detect_fqgan(keys('vis', 'sem', 'sem_mid')) == 'triple'
    for branches in (('vis',), ('sem',), ('sem_mid', 'sem_high'), ()):
        assert fq.detect_fqgan(keys(*branches)) is None, branches


def levels_state(levels, grid=None, width=8, extra=()):
    """Encoder ``conv_blocks.0 .. levels-1`` keys (plus decoder and mid
    keys that must not count) and an adapter positional embedding of
    ``grid ** 2`` rows."""
    shapes = {f'encoder.conv_blocks.{i}.res.0.conv1.weight': (4, 4, 3, 3)
              for i in range(levels)}
    shapes.update({'decoder.conv_blocks.9.res.0.conv1.weight': (4, 4, 3, 3),
                   'encoder.mid.0.conv1.weight': (4, 4, 3, 3),
                   'encoder.conv_blocks.7': (1,)})
    if grid is not None:
        shapes['encoder.visual_head.0.positional_embedding'] = (
            grid * grid, width, *extra)
    return meta(shapes)


def test_downsample_factor_is_two_to_the_encoder_levels_minus_one():
    for levels, factor in ((1, 1), (2, 2), (4, 8), (5, 16)):
        assert fq.downsample_factor(levels_state(levels)) == factor
    with pytest.raises(KeyError) as err:
        fq.downsample_factor(levels_state(0))
    assert message(err) == (
        'Missing key "encoder.conv_blocks.0.res.0.conv1.weight": no encoder '
        'levels to read the downsample factor from')


def test_default_config_is_the_paper_config_of_the_factor():
    models = REPO / 'configs' / '_base_' / 'models'
    for variant in ('dual', 'triple'):
        path = fq.default_config(variant, levels_state(5, grid=16))
        assert path == models / f'fqgan_{variant}_ds16.py'
        assert path.is_file()
        path = fq.default_config(variant, levels_state(4, grid=32, width=3))
        assert path == models / f'fqgan_{variant}_ds8.py'
        assert path.is_file()


@pytest.mark.parametrize('levels,grid,width', [
    (5, 8, 256), (4, 16, 1024), (3, 64, 8), (6, 8, 8), (5, 15, 8)])
def test_default_config_refuses_what_is_not_a_released_256_px_model(
        levels, grid, width):
    factor = 2 ** (levels - 1)
    with pytest.raises(ValueError) as err:
        fq.default_config('dual', levels_state(levels, grid, width))
    assert message(err) == (
        f'Downsample {factor} (encoder levels) and adapter grid '
        f'{grid}x{grid} ("encoder.visual_head.0.positional_embedding") are '
        'not a released 256 px model (ds16 or ds8): pass the fqzoo config '
        '(--config)')


def test_default_config_needs_a_two_dimensional_adapter_embedding():
    with pytest.raises(KeyError) as err:
        fq.default_config('dual', levels_state(5))
    assert message(err) == ('Missing key "encoder.visual_head.0.positional_'
                            'embedding" (needed for the token grid)')
    with pytest.raises(ValueError) as err:
        fq.default_config('dual', levels_state(5, 16, 8, extra=(1,)))
    assert message(err) == ('"encoder.visual_head.0.positional_embedding" '
                            'has shape (256, 8, 1), expected 2 dimensions')


MODEL = dict(type='ImageTokenizer', width=3,
             discriminator=dict(type='PatchGANDiscriminator'),
             regularizers=[dict(type='DisentanglementRegularizer')])
EXPECTED_MODEL = dict(MODEL, discriminator=None, perceptual_loss=None)


def test_model_config_of_a_file_a_config_and_a_model_dict(tmp_path):
    path = tmp_path / 'tiny.py'
    path.write_text(f'model = {MODEL!r}\nlr = 0.5\n')
    for source in (path, str(path), Config.fromfile(str(path)),
                   {'model': dict(MODEL), 'lr': 0.5}, dict(MODEL)):
        model = fq.model_config(source)
        assert model == EXPECTED_MODEL, source
        assert type(model) is dict
    given = {'model': dict(MODEL)}
    fq.model_config(given)
    assert given == {'model': MODEL}


def test_semantic_indices_are_the_regularizers_with_a_head():
    regs = [dict(type='DisentanglementRegularizer'),
            dict(type='SemanticRegularizer', head=dict(type='H')),
            dict(type='SemanticRegularizer', head=None),
            dict(type='SemanticRegularizer', head=dict(type='H'))]
    assert fq.semantic_indices({'regularizers': regs}) == [1, 3]
    assert fq.semantic_indices({'regularizers': None}) == []
    assert fq.semantic_indices({}) == []


TINY = dict(
    type='ImageTokenizer',
    encoder=dict(type='VQGANTrunk', ch=8, ch_mult=(1, 2), num_res_blocks=1),
    heads=dict(type='TransformerBranchHead', in_channels=16, out_channels=8,
               num_layers=1, num_heads=2, grid_size=4),
    quantizer=dict(type='FactorizedQuantizer', num_codebooks=2,
                   quantizer=dict(type='VectorQuantizer', codebook_size=8,
                                  embed_dim=4)),
    decoder=dict(type='VQGANDecoder', ch=8, ch_mult=(1, 2), num_res_blocks=1,
                 z_channels=8),
    regularizers=[
        dict(type='DisentanglementRegularizer'),
        dict(type='SemanticRegularizer', branch=1,
             teacher=dict(type='EfficientNetTeacher', pretrained=False),
             head=dict(type='FeaturePredictionHead', in_channels=4, width=8,
                       num_layers=1, num_heads=2, grid_size=4))],
    discriminator=dict(type='PatchGANDiscriminator', ndf=8, num_layers=2))


def tiny_dual_release():
    """Random tensors under the released Dual keys of the tiny model's
    parameters (typed: the docstring's map), with the usage buffers."""
    model = build_model(fq.model_config(TINY))
    rng = torch.Generator().manual_seed(0)
    table = fq.fqgan_key_table('dual', [1])
    state, expected = {}, {}
    for name, param in model.named_parameters():
        value = torch.randn(param.shape, generator=rng)
        state[table.to_released(name)] = value
        expected[name] = value
    state['quantize_vis.codebook_used'] = torch.zeros(16)
    state['quantize_sem.codebook_used'] = torch.zeros(16)
    return state, expected


def test_convert_fqgan_onto_a_given_config():
    state, expected = tiny_dual_release()
    assert 'encoder.semantic_head.0.transformer.0.mlp.c_fc.weight' in state
    assert 'feat_pred_head.upscale.0.weight' in state
    weights, model_cfg = fq.convert_fqgan(state, config=TINY)
    assert model_cfg == dict(TINY, discriminator=None, perceptual_loss=None)
    assert weights.keys() == expected.keys()
    assert all(weights[k] is v for k, v in expected.items())


def test_convert_fqgan_names_both_keys_and_the_layout():
    state, _ = tiny_dual_release()
    state['quant_conv_sem.weight'] = torch.zeros(4, 8, 3, 3)
    with pytest.raises(ValueError) as err:
        fq.convert_fqgan(state, config=TINY)
    assert message(err) == (
        '"quant_conv_sem.weight" (fqzoo "quant_convs.1.weight") has shape '
        '(4, 8, 3, 3), the fqzoo model of the FQGAN dual layout expects '
        '(4, 8, 1, 1)')
    state, _ = tiny_dual_release()
    del state['encoder.conv_out_sem.bias']
    with pytest.raises(KeyError) as err:
        fq.convert_fqgan(state, config=TINY)
    assert message(err).startswith(
        'Missing key "encoder.conv_out_sem.bias" (fqzoo "heads.1.conv_out.'
        'bias") of the FQGAN dual layout (1 missing')


def test_convert_fqgan_refuses_other_state_dicts():
    for state in ({'quantize_vis.embedding.weight': torch.zeros(2, 2)},
                  release.vq_state()):
        with pytest.raises(KeyError) as err:
            fq.convert_fqgan(state, config=TINY)
        assert message(err) == (
            'Missing key "quantize_vis.embedding.weight" with '
            '"quantize_sem.embedding.weight" (Dual) or '
            '"quantize_sem_mid.embedding.weight" (Triple): not a released '
            'FQGAN tokenizer')


@pytest.fixture(scope='module')
def paper_triple_ds8():
    """Released Triple ds8 keys (meta tensors) of the paper config's
    model, typed map: the prediction heads are regularizers 1 and 2."""
    path = REPO / 'configs' / '_base_' / 'models' / 'fqgan_triple_ds8.py'
    model = build_model(fq.model_config(path))
    table = fq.fqgan_key_table('triple', [1, 2])
    state = {table.to_released(k): p for k, p in model.named_parameters()}
    state['quantize_vis.codebook_used'] = torch.empty(65536, device='meta')
    return state, path


def test_convert_fqgan_without_config_uses_the_detected_paper_config(
        paper_triple_ds8):
    state, path = paper_triple_ds8
    weights, model_cfg = fq.convert_fqgan(state)
    model = Config.fromfile(str(path)).model.to_dict()
    assert model_cfg == dict(model, discriminator=None, perceptual_loss=None)
    assert model_cfg['encoder']['ch_mult'] == (1, 2, 2, 4)
    assert weights['quantizer.subs.2.embedding.weight'] is \
        state['quantize_sem_high.embedding.weight']
    assert len(weights) == len(state) - 1


def test_fqgan_image_size_is_the_adapter_grid_times_the_factor():
    cfg = {'encoder': {'ch_mult': (1, 1, 2, 2, 4)},
           'heads': {'grid_size': 16}}
    sizes = fq.image_sizes(cfg)
    assert [f'{s}x{s}' for s in sizes] == ['256x256']
    cfg = {'encoder': {'ch_mult': [1, 2, 2, 4]},
           'heads': [{'grid_size': 32}, {'grid_size': 5}]}
    assert [f'{s}x{s}' for s in fq.image_sizes(cfg)] == ['256x256']
    cfg = {'encoder': {'ch_mult': (1, 2)}, 'heads': ({'grid_size': 3},)}
    assert [f'{s}x{s}' for s in fq.image_sizes(cfg)] == ['6x6']
    assert fq.FAMILY.image_sizes is fq.image_sizes


def test_fqgan_dropped_keys_are_the_usage_buffers_in_order():
    state = dict.fromkeys(['quantize_sem_mid.codebook_used',
                           'quantize_vis.embedding.weight',
                           'quantize_vis.codebook_used',
                           'xquantize_vis.codebook_used',
                           'quantize_vis.codebook_used.x'])
    assert fq.dropped_keys(state) == ['quantize_sem_mid.codebook_used',
                                      'quantize_vis.codebook_used']
    assert fq.FAMILY.dropped(state) == fq.dropped_keys(state)


# -------------------------------------------------------- llamagen_vq.py

def test_llamagen_vq_table_pairs_and_name():
    table = lv.llamagen_vq_key_table()
    assert table.name == 'LlamaGen VQ'
    pairs = {'quant_conv.weight': 'quant_convs.0.weight',
             'quant_conv.bias': 'quant_convs.0.bias',
             'quantize.embedding.weight': 'quantizer.embedding.weight',
             'encoder.conv_blocks.1.attn.0.k.bias':
                 'encoder.conv_blocks.1.attn.0.k.bias',
             'decoder.mid.2.conv1.weight': 'decoder.mid.2.conv1.weight',
             'post_quant_conv.bias': 'post_quant_conv.bias'}
    for released, ours in pairs.items():
        assert table.to_fqzoo(released) == ours
        assert table.to_released(ours) == released
    assert table.to_fqzoo('quantize.codebook_used') is None
    with pytest.raises(KeyError) as err:
        table.to_released('quantizer.codebook_used')
    assert message(err) == ('No released counterpart of "quantizer.codebook'
                            '_used" in the LlamaGen VQ layout')


def test_detect_llamagen_vq_reads_the_downsample_factor():
    def shapes(mult):
        return meta(release.vq_shapes(32, mult, 1, 16, 64, 8))

    assert lv.detect_llamagen_vq(shapes((1, 2))) == 'ds2'
    assert lv.detect_llamagen_vq(shapes((1, 1, 2, 2, 4))) == 'ds16'
    assert lv.detect_llamagen_vq(shapes((1,))) == 'ds1'
    assert lv.detect_llamagen_vq(dict.fromkeys(
        ['quantize.embedding.weight', 'quant_conv.weight',
         'decoder.conv_blocks.0.res.0.conv1.weight'])) == 'vq'
    for missing in ('quantize.embedding.weight', 'quant_conv.weight'):
        state = shapes((1, 2))
        del state[missing]
        assert lv.detect_llamagen_vq(state) is None, missing


def arch_state(in_channels=1, out_channels=5):
    """Encoder widths 32 x (1, 2, 4) with 2 blocks a level, decoder widths
    32 x (1, 1, 2) with 1 + 1 blocks a level (read lowest resolution
    first), 12 latent channels, 40 codes of 6 dimensions."""
    enc = release.vq_shapes(32, (1, 2, 4), 2, 12, 40, 6,
                            in_channels=in_channels)
    dec = release.vq_shapes(32, (1, 1, 2), 1, 12, 40, 6)
    shapes = {k: v for k, v in enc.items() if not k.startswith('decoder.')}
    shapes.update({k: v for k, v in dec.items() if k.startswith('decoder.')})
    weight = shapes['decoder.conv_out.weight']
    shapes['decoder.conv_out.weight'] = (out_channels, *weight[1:])
    return meta(shapes)


ARCH = dict(in_channels=1, ch=32, ch_mult=[1, 2, 4], num_res_blocks=2,
            z_channels=12, decoder_ch_mult=[1, 1, 2],
            decoder_num_res_blocks=1, out_channels=5, codebook_size=40,
            embed_dim=6)


def test_infer_architecture_reads_every_field_off_the_shapes():
    arch = lv.infer_architecture(arch_state())
    assert arch == ARCH
    assert all(type(m) is int
               for m in arch['ch_mult'] + arch['decoder_ch_mult'])
    small = meta(release.vq_shapes(32, (1,), 3, 16, 64, 8))
    assert lv.infer_architecture(small) == dict(
        in_channels=3, ch=32, ch_mult=[1], num_res_blocks=3, z_channels=16,
        decoder_ch_mult=[1], decoder_num_res_blocks=3, out_channels=3,
        codebook_size=64, embed_dim=8)


def test_infer_architecture_names_what_is_missing_or_wrong():
    state = arch_state()
    del state['encoder.conv_blocks.1.res.0.conv1.weight']
    with pytest.raises(KeyError) as err:
        lv.infer_architecture(state)
    assert message(err) == ('Missing key "encoder.conv_blocks.1.res.0.conv1.'
                            'weight" (needed for the width of encoder level '
                            '1)')
    state = arch_state()
    state['decoder.conv_blocks.2.res.0.conv1.weight'] = torch.empty(
        48, 32, 3, 3, device='meta')
    with pytest.raises(ValueError) as err:
        lv.infer_architecture(state)
    assert message(err) == (
        '"decoder.conv_blocks.2.res.0.conv1.weight" has 48 output channels, '
        'not a multiple of the base width 32 ("encoder.conv_in.weight")')
    state = arch_state()
    state['decoder.conv_blocks.0.res.0.conv1.weight'] = torch.empty(
        64, 64, 3, device='meta')
    with pytest.raises(ValueError) as err:
        lv.infer_architecture(state)
    assert message(err) == ('"decoder.conv_blocks.0.res.0.conv1.weight" has '
                            'shape (64, 64, 3), expected 4 dimensions')
    for key, why in (('encoder.conv_in.weight', 'the base width'),
                     ('quantize.embedding.weight', 'the codebook size'),
                     ('encoder.conv_out.weight', 'z_channels'),
                     ('decoder.conv_out.weight', 'the image channels')):
        state = arch_state()
        del state[key]
        with pytest.raises(KeyError) as err:
            lv.infer_architecture(state)
        assert message(err) == f'Missing key "{key}" (needed for {why})'
    for part in ('encoder', 'decoder'):
        state = {k: v for k, v in arch_state().items()
                 if not k.startswith(f'{part}.conv_blocks.')}
        with pytest.raises(KeyError) as err:
            lv.infer_architecture(state)
        assert message(err) == (f'Missing key "{part}.conv_blocks.0.res.0.'
                                f'conv1.weight": no {part} levels')


def test_tokenizer_config_is_the_inference_model_of_the_architecture():
    assert lv.tokenizer_config(ARCH) == dict(
        type='ImageTokenizer',
        encoder=dict(type='VQGANEncoder', in_channels=1, ch=32,
                     ch_mult=(1, 2, 4), num_res_blocks=2, z_channels=12),
        decoder=dict(type='VQGANDecoder', out_channels=5, ch=32,
                     ch_mult=(1, 1, 2), num_res_blocks=1, z_channels=12),
        quantizer=dict(type='VectorQuantizer', codebook_size=40,
                       embed_dim=6, l2_norm=True, beta=0.25),
        discriminator=None, perceptual_loss=None)


def test_convert_llamagen_vq_moves_every_tensor_and_names_the_layout():
    state = release.vq_state()
    weights, model_cfg = lv.convert_llamagen_vq(state)
    assert model_cfg == lv.tokenizer_config(dict(
        in_channels=3, ch=32, ch_mult=[1, 2], num_res_blocks=1,
        z_channels=16, decoder_ch_mult=[1, 2], decoder_num_res_blocks=1,
        out_channels=3, codebook_size=64, embed_dim=8))
    assert weights['quant_convs.0.weight'] is state['quant_conv.weight']
    assert weights['quantizer.embedding.weight'] is \
        state['quantize.embedding.weight']
    assert weights['decoder.conv_out.bias'] is state['decoder.conv_out.bias']
    assert len(weights) == len(state) - 1
    state['quant_conv.weight'] = torch.zeros(8, 16, 3, 3)
    with pytest.raises(ValueError) as err:
        lv.convert_llamagen_vq(state)
    assert message(err) == (
        '"quant_conv.weight" (fqzoo "quant_convs.0.weight") has shape '
        '(8, 16, 3, 3), the fqzoo model of the LlamaGen VQ layout expects '
        '(8, 16, 1, 1)')
    state = release.vq_state()
    del state['post_quant_conv.bias']
    with pytest.raises(KeyError) as err:
        lv.convert_llamagen_vq(state)
    assert message(err).startswith(
        'Missing key "post_quant_conv.bias" (fqzoo "post_quant_conv.bias") '
        'of the LlamaGen VQ layout (1 missing')


def test_convert_llamagen_vq_refuses_other_state_dicts():
    state = release.vq_state()
    del state['quant_conv.weight']
    for other in (state, release.gpt_state()):
        with pytest.raises(KeyError) as err:
            lv.convert_llamagen_vq(other)
        assert message(err) == (
            'Missing key "quantize.embedding.weight" with "quant_conv.'
            'weight": not a released LlamaGen VQ tokenizer')


def test_llamagen_vq_dropped_keys_and_image_size():
    state = dict.fromkeys(['quantize.codebook_used', 'quant_conv.weight',
                           'quantize.codebook_used.x'])
    assert lv.dropped_keys(state) == ['quantize.codebook_used']
    assert lv.FAMILY.dropped(state) == ['quantize.codebook_used']
    assert lv.FAMILY.image_sizes({}) == [256]
