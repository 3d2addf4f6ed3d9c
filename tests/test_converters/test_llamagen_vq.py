"""LlamaGen's VQ tokenizers converted by tools/convert/llamagen_vq.py,
checked against outputs of the released ``VQModel`` recorded once in
``llamagen_released.pt`` (tools/dev/compare_llamagen_vq.py) on the
synthetic weights of ``llamagen_release.py``."""
import importlib.util
from pathlib import Path

import llamagen_release as release
import pytest
import torch
from mmengine.config import Config

from fqzoo.apis import init_tokenizer
from fqzoo.converters import (
    convert_llamagen_vq,
    convert_released,
    detect_llamagen_vq,
    llamagen_vq_key_table,
    strip_prefixes,
)
from fqzoo.converters.model import build_model
from fqzoo.errors import InputKeyError

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RECORDED = torch.load(HERE / 'llamagen_released.pt', weights_only=True)


def load_tool(name):
    spec = importlib.util.spec_from_file_location(
        name, REPO / 'tools' / 'convert' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOOL = load_tool('llamagen_vq')


def convert(tmp_path, checkpoint, *extra):
    src, dst, cfg = (tmp_path / 'vq_release.pt', tmp_path / 'vq.pth',
                     tmp_path / 'vq.py')
    torch.save(checkpoint, src)
    TOOL.main([str(src), str(dst), '--out-config', str(cfg), *extra])
    return dst, cfg


def test_converted_tokenizer_gives_the_released_indices_and_images(tmp_path):
    dst, cfg = convert(tmp_path, {'model': release.vq_state()},
                       '--image-size', '16', '32')
    tok = init_tokenizer(cfg, dst)
    images = RECORDED['images']
    indices = tok.encode(images)
    assert indices.shape == (3, 1, release.GRID, release.GRID)
    assert torch.equal(indices[:, 0], RECORDED['indices'])
    # Random weights give images of about 2.5 at most: float32 rounding.
    torch.testing.assert_close(tok.reconstruct(images),
                               RECORDED['reconstructions'],
                               rtol=0, atol=1e-4)
    torch.testing.assert_close(tok.decode(RECORDED['indices'][:, None]),
                               RECORDED['decoded'], rtol=0, atol=1e-4)
    assert (RECORDED['reconstructions'] - images).abs().mean() > 0.1

    out = torch.load(dst, weights_only=True)
    meta = out['meta']
    assert (meta['family'], meta['layout'], meta['entry']) == (
        'llamagen_vq', 'ds2', 'model')
    assert meta['source'] == 'FoundationVision/LlamaGen'
    assert meta['dropped'] == ['quantize.codebook_used']
    assert meta['token_layout'] == dict(
        codebook_sizes=[64], sub_tokens=['pixel'], downsample_factor=2,
        grids={'16x16': [8, 8], '32x32': [16, 16]})
    model = Config.fromfile(str(cfg)).model
    assert model.quantizer.l2_norm is True
    assert (model.encoder.ch, tuple(model.encoder.ch_mult),
            model.encoder.num_res_blocks, model.encoder.z_channels) == (
        32, (1, 2), 1, 16)
    assert model.decoder.num_res_blocks == 1


def test_ema_entry_with_training_prefixes(tmp_path):
    state = release.vq_state()
    checkpoint = {'model': {k: torch.zeros_like(v) for k, v in state.items()},
                  'ema': {f'module._orig_mod.{k}': v
                          for k, v in state.items()},
                  'steps': 7}
    dst, cfg = convert(tmp_path, checkpoint, '--ema')
    meta = torch.load(dst, weights_only=True)['meta']
    assert meta['entry'] == 'ema'
    assert meta['stripped_prefixes'] == ['_orig_mod.', 'module.']
    assert meta['token_layout']['grids'] == {'256x256': [128, 128]}
    tok = init_tokenizer(cfg, dst)
    assert torch.equal(tok.encode(RECORDED['images'])[:, 0],
                       RECORDED['indices'])


# The released layout at paper scale: (ch_mult, downsample, parameters of
# LlamaGen's README: 72M, 70M; exact counts of the fqzoo model).
PAPER = {'vq_ds16_c2i': ((1, 1, 2, 2, 4), 16, 71_883_403),
         'vq_ds8_c2i': ((1, 2, 2, 4), 8, 70_109_835)}


@pytest.mark.parametrize('name', sorted(PAPER))
def test_released_sizes_convert_to_the_paper_configs(name):
    """Released-layout tensors of VQ-16 / VQ-8 (meta device, no memory)
    convert to the model of configs/llamagen/<name>.py."""
    mult, factor, params = PAPER[name]
    shapes = release.vq_shapes(ch=128, ch_mult=mult, num_res_blocks=2,
                               z_channels=256, codebook_size=16384,
                               embed_dim=8)
    state = {k: torch.empty(s, device='meta') for k, s in shapes.items()}
    assert detect_llamagen_vq(state) == f'ds{factor}'
    weights, model_cfg = convert_llamagen_vq(state)
    assert len(weights) == len(shapes) - 1  # codebook_used dropped
    ours = build_model(model_cfg)
    paper = Config.fromfile(str(REPO / 'configs' / 'llamagen' / f'{name}.py'))
    reference = build_model(dict(paper.model.to_dict(), discriminator=None,
                                 perceptual_loss=None))
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in reference.state_dict().items()}
    assert sum(p.numel() for p in ours.parameters()) == params
    assert ours.encoder.downsample_factor == factor
    for attr in ('codebook_size', 'embed_dim', 'l2_norm', 'beta'):
        assert getattr(ours.quantizer, attr) == \
            getattr(reference.quantizer, attr), attr


def test_key_table_round_trips_every_released_key():
    table = llamagen_vq_key_table()
    for key in release.vq_shapes(**release.VQ):
        new = table.to_fqzoo(key)
        if key == 'quantize.codebook_used':
            assert new is None
        else:
            assert table.to_released(new) == key


def edit(change):
    state = release.vq_state()
    change(state)
    return {'model': state}


ERRORS = {
    'missing': (lambda s: s.pop('decoder.conv_out.bias'), KeyError,
                r'Missing key "decoder\.conv_out\.bias"'),
    'unknown': (lambda s: s.update({'encoder.extra.weight': torch.zeros(3)}),
                KeyError, r'Unexpected key "encoder\.extra\.weight"'),
    'outside the layout': (lambda s: s.update({'loss.weight': torch.ones(1)}),
                           KeyError, r'Unexpected key "loss\.weight": not '
                           r'part of the released LlamaGen VQ layout'),
    'shape': (lambda s: s.update({'quant_conv.weight': torch.zeros(8, 16, 3,
                                                                   3)}),
              ValueError, r'"quant_conv\.weight" \(fqzoo "quant_convs\.0\.'
              r'weight"\) has shape \(8, 16, 3, 3\).*expects \(8, 16, 1, 1\)'),
    'width': (lambda s: s.update({'encoder.conv_blocks.1.res.0.conv1.weight':
                                  torch.zeros(48, 32, 3, 3)}), ValueError,
              r'"encoder\.conv_blocks\.1\.res\.0\.conv1\.weight" has 48 '
              r'output channels, not a multiple of the base width 32'),
}


@pytest.mark.parametrize('name', sorted(ERRORS))
def test_malformed_release_is_named_and_nothing_written(tmp_path, name):
    change, error, message = ERRORS[name]
    with pytest.raises(error, match=r'vq_release\.pt \(model\): .*'
                       + message):
        convert(tmp_path, edit(change))
    assert not (tmp_path / 'vq.pth').exists()
    assert not (tmp_path / 'vq.py').exists()


def test_two_copies_of_a_weight_under_training_prefixes_are_refused(
        tmp_path):
    """``module.x`` beside ``x``: which copy is the weight cannot be told,
    so the file is refused naming both keys (not one kept silently)."""
    state = release.vq_state()
    key = next(iter(state))
    doubled = dict(state, **{f'module.{key}': state[key] + 1})
    src = tmp_path / 'doubled.pt'
    torch.save({'model': doubled}, src)
    with pytest.raises(InputKeyError) as err:
        convert_released(src)
    assert err.value.args[0] == (
        f'{src} (model): "{key}" and "module.{key}" both become "{key}" '
        'without their training prefixes')
    with pytest.raises(KeyError, match='"_orig_mod.w" and "module.w" both '
                       'become "w"'):
        strip_prefixes({'_orig_mod.w': torch.ones(1),
                        'module.w': torch.ones(1)})
