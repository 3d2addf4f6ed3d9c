"""Detection of each released family from its keys, and the dispatch
(``detect_and_convert``) that ``get_model`` uses on the fly."""
import importlib.util
from pathlib import Path

import llamagen_release as release
import pytest
import torch
from mmengine.config import Config

from fqzoo.converters import (
    FAMILIES,
    convert_far,
    convert_llamagen_gpt,
    convert_llamagen_vq,
    detect_and_convert,
    fqgan_key_table,
    released_shapes,
)
from fqzoo.converters.fqgan import model_config, semantic_indices
from fqzoo.converters.model import build_model

REPO = Path(__file__).resolve().parents[2]
FAR_ARCH = dict(family='far', width=32, num_layers=1, num_heads=4,
                num_kv_heads=4, ffn_hidden_dim=64, codebook_sizes=[16, 16, 16],
                num_classes=5, head_layers=1, head_num_kv_heads=4,
                head_ffn_hidden_dim=64)


def meta_state(shapes):
    return {k: torch.empty(s, device='meta') for k, s in shapes.items()}


def fqgan_state(variant, ds):
    """Paper-scale released FQGAN keys (meta tensors) from the model of
    configs/_base_/models/fqgan_<variant>_ds<ds>.py."""
    cfg = model_config(REPO / 'configs' / '_base_' / 'models' /
                       f'fqgan_{variant}_ds{ds}.py')
    model = build_model(cfg)
    table = fqgan_key_table(variant, semantic_indices(cfg))
    state = {table.to_released(k): p for k, p in model.named_parameters()}
    state['quantize_vis.codebook_used'] = torch.empty(65536, device='meta')
    return state, cfg


def states():
    far = {k: torch.randn(s) for k, s in released_shapes(FAR_ARCH).items()}
    return {'llamagen_vq': release.vq_state(),
            'llamagen': release.gpt_state(), 'far': far,
            'fqgan': fqgan_state('dual', 16)[0]}


def test_each_family_detects_only_its_own_state_dicts():
    found = {name: {family: bool(FAMILIES[family].detect(state))
                    for family in FAMILIES}
             for name, state in states().items()}
    assert found == {name: {f: f == name for f in FAMILIES}
                     for name in found}


@pytest.mark.parametrize('variant,ds', [('dual', 16), ('triple', 8)])
def test_fqgan_layout_and_paper_config_are_detected(variant, ds):
    state, cfg = fqgan_state(variant, ds)
    family, weights, model_cfg = detect_and_convert(
        {f'module.{k}': v for k, v in state.items()})
    assert family == 'fqgan'
    assert FAMILIES['fqgan'].detect(state) == variant
    assert model_cfg == cfg
    assert set(weights) == {k for k, _ in build_model(cfg).named_parameters()}


def test_dispatch_equals_the_family_converters():
    all_states = states()
    vq = detect_and_convert(all_states['llamagen_vq'], num_heads=4)
    gpt = detect_and_convert(all_states['llamagen'], num_heads=4,
                             grid_size=release.GRID)
    far = detect_and_convert(all_states['far'], num_heads=4, grid_size=3)
    for got, (weights, config) in (
            (vq, convert_llamagen_vq(all_states['llamagen_vq'])),
            (gpt, convert_llamagen_gpt(all_states['llamagen'], num_heads=4,
                                       grid_size=release.GRID)),
            (far, convert_far(all_states['far'], num_heads=4,
                              grid_size=3))):
        assert got.config == config
        assert got.state_dict.keys() == weights.keys()
        assert all(torch.equal(got.state_dict[k], v)
                   for k, v in weights.items())
    assert (vq.family, gpt.family, far.family) == ('llamagen_vq', 'llamagen',
                                                   'far')
    assert far.config['codebook_sizes'] == [16, 16, 16]
    assert tuple(gpt.config['grid_size']) == (release.GRID, release.GRID)


def test_unknown_layouts_families_and_options_are_named():
    with pytest.raises(KeyError, match=r'No released layout recognised: '
                       r'none of "quantize_vis\.embedding\.weight" \(FQGAN\)'
                       r'.*"tok_embeddings_1\.weight" \(FAR\) \(keys: '
                       r'\[\W*head\.weight'):
        detect_and_convert({'head.weight': torch.zeros(2)})
    with pytest.raises(ValueError, match='a llamagen_vq checkpoint, not '
                       'llamagen: convert it with tools/convert/'
                       'llamagen_vq.py'):
        detect_and_convert(release.vq_state(), 'llamagen')
    with pytest.raises(TypeError, match=r"Unknown conversion option\(s\) "
                       r"\['heads'\]"):
        detect_and_convert(release.vq_state(), heads=4)


def test_auto_tool_detects_and_writes_what_the_family_tool_does(tmp_path):
    def tool(name):
        spec = importlib.util.spec_from_file_location(
            f'dispatch_{name}', REPO / 'tools' / 'convert' / f'{name}.py')
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.main

    torch.save({'model': release.gpt_state()}, tmp_path / 'gpt.pt')
    args = ['--num-heads', '4', '--grid-size', str(release.GRID)]
    auto = tool('auto')([str(tmp_path / 'gpt.pt'), str(tmp_path / 'a.pth'),
                         '--out-config', str(tmp_path / 'a.py'), *args,
                         '--image-size', '16'])
    own = tool('llamagen_gpt')([str(tmp_path / 'gpt.pt'),
                                str(tmp_path / 'b.pth'), '--out-config',
                                str(tmp_path / 'b.py'), *args])
    assert auto == own
    assert Config.fromfile(str(tmp_path / 'a.py')).model == \
        Config.fromfile(str(tmp_path / 'b.py')).model
    a = torch.load(tmp_path / 'a.pth', weights_only=True)['state_dict']
    b = torch.load(tmp_path / 'b.pth', weights_only=True)['state_dict']
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
