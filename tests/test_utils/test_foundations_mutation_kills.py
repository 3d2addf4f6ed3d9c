"""fqzoo's foundations (fqzoo/errors.py, fqzoo/registry.py,
fqzoo/utils/shards.py, fqzoo/utils/token_layout.py,
fqzoo/visualization/grid.py): behaviour that mutation testing showed no
test pinned down (docs/testing.md lists the mutants these tests kill).

References are worked out another way: grid shapes from the docstring
formulas, pixel values from the [-1, 1] -> [0, 255] map by hand, messages
written out in full, layouts written out as literal dicts, and each
checkpoint reader's safety (CPU-only machines, no pickled code, memory-
mapped reads) from :func:`~fqzoo.utils.token_layout.checkpoint_meta`'s
docstring.
"""
import argparse
import functools
import json
import logging
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.serialization
from mmengine.registry import Registry
from PIL import Image
from safetensors.torch import save_file

from fqzoo.errors import (
    InputError,
    InputKeyError,
    InputTypeError,
    debug_enabled,
    input_error_message,
)
from fqzoo.registry import build_component, build_module, known_names
from fqzoo.utils.shards import (
    ShardRun,
    save_atomic,
    settings_differences,
    shard_ranges,
)
from fqzoo.utils.token_layout import (
    checkpoint_layout,
    checkpoint_meta,
    generator_layout,
    layout_meta,
    make_layout,
    merge_layouts,
    tokenizer_layout,
)
from fqzoo.visualization.grid import (
    image_grid,
    reconstruction_grid,
    save_png,
)


# -------------------------------------------------------------------- errors
def test_debug_is_off_without_the_variable(monkeypatch):
    monkeypatch.delenv('FQZOO_DEBUG', raising=False)
    assert debug_enabled() is False
    for value in ('1', ' On ', 'TRUE', 'yes'):
        monkeypatch.setenv('FQZOO_DEBUG', value)
        assert debug_enabled() is True
    monkeypatch.setenv('FQZOO_DEBUG', '0')
    assert debug_enabled() is False


def test_input_error_message_of_other_arguments():
    """One string argument is the message as written; anything else is
    ``str(error)`` as Python writes it."""
    assert input_error_message(InputKeyError('no "x" key')) == 'no "x" key'
    assert input_error_message(InputError('a', 'b')) == "('a', 'b')"
    assert input_error_message(InputError(5)) == '5'
    assert input_error_message(InputError()) == ''


# ------------------------------------------------------------------ registry
def test_known_names_include_every_ancestor():
    root = Registry('gadget', scope='core_root_scope')
    child = Registry('gadget', parent=root, scope='core_child_scope')

    @root.register_module()
    class Spanner:
        pass

    @child.register_module()
    class Wrench:
        pass

    assert known_names(child) == ['Spanner', 'Wrench']
    assert known_names(root) == ['Spanner']


GADGETS = Registry('gadget', scope='core_gadget_scope')


@GADGETS.register_module()
class Lamp:
    def __init__(self, watts, colour='white'):
        self.watts, self.colour = watts, colour


@GADGETS.register_module()
class Anything:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


@GADGETS.register_module()
def make_pair(first, *rest, second=2):
    return (first, second, rest)


@GADGETS.register_module()
class Box(torch.nn.Module):
    def __init__(self, size=1):
        super().__init__()
        self.size = size


def test_build_component_defaults_and_arguments():
    lamp = build_component(dict(type='Lamp', watts=60), GADGETS)
    assert (lamp.watts, lamp.colour) == (60, 'white')
    lamp = build_component(dict(type='Lamp'), GADGETS,
                           default_args=dict(watts=40, colour='red'))
    assert (lamp.watts, lamp.colour) == (40, 'red')
    assert build_component(dict(type='make_pair', first=1, second=3),
                           GADGETS) == (1, 3, ())
    assert build_component(dict(type='Anything', a=1), GADGETS,
                           default_args=dict(b=2)).kwargs == dict(a=1, b=2)
    scoped = build_component(dict(type='Lamp', watts=5,
                                  _scope_='core_gadget_scope'), GADGETS)
    assert scoped.watts == 5


def test_build_module_defaults_and_arguments():
    box = build_module(dict(type='Box'), GADGETS, default_args=dict(size=3))
    assert box.size == 3
    boxes = build_module([dict(type='Box', size=1), dict(type='Box')],
                         GADGETS, default_args=dict(size=2))
    assert isinstance(boxes, torch.nn.Sequential)
    assert [box.size for box in boxes] == [1, 2]


@pytest.mark.parametrize('build', [build_component, build_module])
def test_unknown_type_names_every_known_one(build):
    with pytest.raises(InputKeyError) as err:
        build(dict(type='Lump', watts=1), GADGETS)
    assert input_error_message(err.value) == (
        'Unknown gadget type "Lump". Known gadget types: Anything, Box, '
        'Lamp, make_pair')


@pytest.mark.parametrize('build', [build_component, build_module])
def test_unknown_arguments_name_every_accepted_one(build):
    with pytest.raises(InputTypeError) as err:
        build(dict(type='Lamp', watts=1, volts=2, size=3), GADGETS)
    assert str(err.value) == ('Lamp got unknown argument(s) size, volts. '
                              'Accepted arguments: watts, colour')
    with pytest.raises(InputTypeError) as err:
        build(dict(type='Lamp', watts=1), GADGETS,
              default_args=dict(volts=2))
    assert str(err.value) == ('Lamp got unknown argument(s) volts. '
                              'Accepted arguments: watts, colour')
    with pytest.raises(InputTypeError) as err:
        build(dict(type=Lamp, wats=1), GADGETS)
    assert str(err.value) == ('Lamp got unknown argument(s) wats. '
                              'Accepted arguments: watts, colour')


def test_a_function_accepts_its_keywords_not_its_varargs():
    with pytest.raises(InputTypeError) as err:
        build_component(dict(type='make_pair', first=1, rest=2), GADGETS)
    assert str(err.value) == ('make_pair got unknown argument(s) rest. '
                              'Accepted arguments: first, second')



def test_a_callable_without_a_name_is_named_by_its_repr():
    red_lamp = functools.partial(Lamp, colour='red')
    with pytest.raises(InputTypeError) as err:
        build_component(dict(type=red_lamp, watts=1, volts=2), GADGETS)
    assert str(err.value) == (f'{red_lamp!r} got unknown argument(s) '
                              'volts. Accepted arguments: watts, colour')


@pytest.mark.parametrize('build', [build_component, build_module])
def test_a_config_that_is_not_a_dict_gets_mmengines_refusal(build):
    with pytest.raises(TypeError, match='cfg should be a dict, ConfigDict '
                       'or Config'):
        build('Lamp', GADGETS)


# -------------------------------------------------------------------- shards
def test_stale_source_message_shortens_each_sha256_to_16_digits():
    path = '/data/tok.pth'
    old = dict(tok=dict(path=path, sha256=None))
    new = dict(tok=dict(path=path, sha256='0123456789abcdef' * 4))
    refused, stale = settings_differences(old, new)
    assert refused == []
    assert stale == [f'tok: {path} has changed (sha256 none... in the '
                     'folder, now 0123456789abcdef...)']
    refused, stale = settings_differences(
        new, dict(tok=dict(path='/other.pth', sha256='f' * 64)))
    assert stale == []
    assert refused == [f'tok: {path} (sha256 0123456789abcdef...) in the '
                       'folder, now /other.pth (sha256 ffffffffffffffff...)']


def test_redo_logs_how_many_stale_files_it_removed(tmp_path, caplog):
    out = tmp_path / 'run'
    out.mkdir()
    ckpt = tmp_path / 'tok.pth'
    source = dict(path=str(ckpt.resolve()), sha256='a' * 64)
    (out / '.settings.json').write_text(json.dumps(dict(tok=source)))
    for name in ('codes_0.npy', 'codes_1.npy', 'codes_2.npy',
                 'manifest.json', 'notes.txt'):
        (out / name).write_text('x')
    (out / 'codes_dir.npy').mkdir()     # a folder is not a stale file
    run = ShardRun(out, dict(tok=dict(source, sha256='b' * 64)), total=6,
                   shard_size=2, what='codes',
                   shard_patterns=['codes_*.npy'], outputs=['manifest.json'])
    with caplog.at_level(logging.WARNING, logger='fqzoo.utils.shards'):
        run.open()
    assert '(4 stale files removed)' in caplog.text
    assert sorted(p.name for p in out.iterdir()) == [
        '.settings.json', 'codes_dir.npy', 'notes.txt']


def _source(path, sha):
    return dict(path=path, sha256=sha * 64)


def test_shards_of_one_item():
    assert shard_ranges(3, 1) == [(0, 1), (1, 2), (2, 3)]
    with pytest.raises(InputError, match='shard_size must be >= 1, got 0'):
        shard_ranges(3, 0)


def test_a_failed_write_that_made_no_file_raises_its_own_error(tmp_path):
    def write(tmp):
        raise OSError('disk full')

    with pytest.raises(OSError, match='disk full') as err:
        save_atomic(tmp_path / 'a.npy', write)
    assert not isinstance(err.value, FileNotFoundError)
    assert list(tmp_path.iterdir()) == []


def test_settings_differences_every_key_of_either_side():
    old = dict(a_tok=_source('/t.pth', 'a'), opt=dict(lr=1),
               split='val')
    new = dict(a_tok=_source('/copy.pth', 'a'), opt=3, split='val',
               steps=10, z_tok='/t.pth')
    refused, stale = settings_differences(
        dict(old, z_tok=_source('/t.pth', 'a')), new)
    assert stale == []
    assert refused == [
        "opt: {'lr': 1} in the folder, now 3",
        'steps: None in the folder, now 10',
        "z_tok: {'path': '/t.pth', 'sha256': '" + 'a' * 64 + "'} in the "
        "folder, now '/t.pth'"]


def test_settings_differences_keep_stale_sources_of_every_level():
    old = dict(a=_source('/a.pth', '1'), b=dict(c=_source('/c.pth', '2')))
    new = dict(a=_source('/a.pth', '3'), b=dict(c=_source('/c.pth', '4')))
    refused, stale = settings_differences(old, new)
    assert refused == []
    assert stale == [
        'a: /a.pth has changed (sha256 1111111111111111... in the folder, '
        'now 3333333333333333...)',
        'b.c: /c.pth has changed (sha256 2222222222222222... in the '
        'folder, now 4444444444444444...)']


def test_shard_run_rank_must_be_below_world_size(tmp_path):
    with pytest.raises(ValueError, match=re.escape(
            'rank 1 is not in [0, 1)')):
        ShardRun(tmp_path, {}, total=2, shard_size=1, what='codes',
                 shard_patterns=['*.npy'], rank=1, world_size=1)


def test_refusal_names_every_difference_in_full(tmp_path):
    out = tmp_path / 'run'
    ShardRun(out, dict(split='val', size=8), total=2, shard_size=1,
             what='codes', shard_patterns=['*.npy']).open()
    other = ShardRun(out, dict(split='train', size=16), total=2,
                     shard_size=1, what='codes', shard_patterns=['*.npy'])
    with pytest.raises(InputError) as err:
        other.open()
    assert str(err.value) == (
        f"{out} holds codes made with other settings (size: 8 in the "
        "folder, now 16; split: 'val' in the folder, now 'train'): use "
        'another output folder or delete it')


def test_open_creates_missing_parent_folders(tmp_path):
    out = tmp_path / 'a' / 'b' / 'run'
    ShardRun(out, dict(split='val'), total=2, shard_size=1, what='codes',
             shard_patterns=['*.npy']).open()
    assert json.loads((out / '.settings.json').read_text()) == dict(
        split='val')


def test_redo_log_names_the_folder_and_every_stale_source(tmp_path,
                                                          caplog):
    out = tmp_path / 'run'
    old = dict(a=_source('/a.pth', '1'), b=_source('/b.pth', '2'))
    ShardRun(out, old, total=2, shard_size=1, what='samples',
             shard_patterns=['*.npy']).open()
    new = dict(a=_source('/a.pth', '3'), b=_source('/b.pth', '4'))
    with caplog.at_level(logging.WARNING, logger='fqzoo.utils.shards'):
        ShardRun(out, new, total=2, shard_size=1, what='samples',
                 shard_patterns=['*.npy']).open()
    assert caplog.messages == [
        f'Redoing the samples in {out}: a: /a.pth has changed (sha256 '
        '1111111111111111... in the folder, now 3333333333333333...); '
        'b: /b.pth has changed (sha256 2222222222222222... in the folder, '
        'now 4444444444444444...) (0 stale files removed)']


def test_other_ranks_refuse_other_settings_too(tmp_path):
    out = tmp_path / 'run'
    ShardRun(out, dict(split='val'), total=2, shard_size=1, what='codes',
             shard_patterns=['*.npy']).open()
    for rank in (1, 2):
        run = ShardRun(out, dict(split='train'), total=2, shard_size=1,
                       what='codes', shard_patterns=['*.npy'], rank=rank,
                       world_size=3)
        with pytest.raises(InputError, match="split: 'val' in the folder, "
                           "now 'train'"):
            run.open()
    assert json.loads((out / '.settings.json').read_text()) == dict(
        split='val')


# -------------------------------------------------------------- token layout
def test_generator_layout_is_its_sizes_and_grid():
    generator = SimpleNamespace(codebook_sizes=[16, 32], grid_size=(4, 2))
    assert generator_layout(generator) == dict(
        codebook_sizes=[16, 32], sub_tokens=None, downsample_factor=None,
        grids={}, grid=[4, 2])


def test_merge_layouts_unites_grids_primary_first():
    primary = make_layout([8], grids={'8x8': [2, 2], '16x16': [4, 4]})
    extra = make_layout([8], downsample_factor=2,
                        grids={'16x16': [8, 8], '32x32': [8, 8]})
    assert merge_layouts(primary, extra) == dict(
        codebook_sizes=[8], sub_tokens=None, downsample_factor=2,
        grids={'8x8': [2, 2], '16x16': [4, 4], '32x32': [8, 8]})
    assert merge_layouts(None, extra)['grids'] == extra['grids']
    assert merge_layouts(primary, None)['grids'] == primary['grids']


def test_layout_meta_is_the_same_text_for_the_same_layout():
    """Equal layouts give equal metadata (so equal published files) in
    whatever order their keys were set."""
    layout = make_layout([8, 8], sub_tokens=['pixel', 'pixel'],
                         downsample_factor=4, image_sizes=[16], grid=[4, 4])
    reordered = dict(reversed(list(layout.items())))
    assert reordered == layout
    assert layout_meta(reordered) == layout_meta(layout) == {
        'token_layout': '{"codebook_sizes": [8, 8], "downsample_factor": 4, '
                        '"grid": [4, 4], "grids": {"16x16": [4, 4]}, '
                        '"sub_tokens": ["pixel", "pixel"]}'}


def test_safetensors_metadata_that_is_not_json_stays_a_string(tmp_path):
    path = tmp_path / 'vq.safetensors'
    save_file(dict(w=torch.ones(2)), str(path),
              metadata=dict(fqzoo_name='vq-16', steps='400', layout='[1, 2'))
    assert checkpoint_meta(path) == dict(fqzoo_name='vq-16', steps=400,
                                         layout='[1, 2')


def test_truncated_checkpoint_message_in_full(tmp_path):
    path = tmp_path / 'd.pth'
    torch.save(dict(meta=dict(token_layout={})), tmp_path / 'whole.pth')
    whole = (tmp_path / 'whole.pth').read_bytes()
    path.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(InputError) as err:
        checkpoint_meta(path)
    assert str(err.value) == (
        f'{path} is not a torch.save zip archive or a safetensors file '
        '(truncated?): its token layout cannot be read')


def test_a_gpu_checkpoint_is_read_on_the_cpu(tmp_path, monkeypatch):
    """A checkpoint saved from CUDA tensors records 'cuda:0' for their
    storages; its meta is read on any machine (mapped to the CPU)."""
    path = tmp_path / 'gpu.pth'
    layout = make_layout([8], grid=[2, 2])
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, 'location_tag',
                      lambda storage: 'cuda:0')
        torch.save(dict(state_dict=dict(w=torch.ones(3)),
                        meta=dict(token_layout=layout)), path)
    assert checkpoint_layout(path) == layout


def test_pickled_objects_are_refused_whatever_torch_defaults_to(
        tmp_path, monkeypatch):
    """Reading a layout never unpickles arbitrary objects, even where
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` turns torch's safe default off."""
    path = tmp_path / 'pickled.pth'
    torch.save(dict(args=argparse.Namespace(lr=1),
                    meta=dict(token_layout=make_layout([8]))), path)
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    with pytest.raises(InputError) as err:
        checkpoint_meta(path)
    assert str(err.value).startswith(
        f'{path} cannot be read as a checkpoint (UnpicklingError: Weights '
        'only load failed.')


def test_checkpoint_meta_maps_the_file_instead_of_reading_it(
        tmp_path, monkeypatch):
    """The docstring's contract: a memory-mapped, weights-only load on the
    CPU (the tensors are never read into memory)."""
    path = tmp_path / 'a.pth'
    torch.save(dict(w=torch.ones(2), meta=dict(step=3)), path)
    calls = []
    load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return load(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', spy)
    assert checkpoint_meta(path) == dict(step=3)
    assert calls == [dict(map_location='cpu', weights_only=True, mmap=True)]


def test_files_without_a_meta_dict_have_no_layout(tmp_path):
    torch.save([torch.ones(2), 3], tmp_path / 'list.pth')
    assert checkpoint_meta(tmp_path / 'list.pth') == {}
    assert checkpoint_layout(tmp_path / 'list.pth') is None
    torch.save(torch.ones(2), tmp_path / 'tensor.pth')
    assert checkpoint_meta(tmp_path / 'tensor.pth') == {}
    torch.save(dict(meta=dict(token_layout='16x16')), tmp_path / 'str.pth')
    assert checkpoint_layout(tmp_path / 'str.pth') is None
    torch.save(dict(meta=dict(token_layout=[16, 16])), tmp_path / 'list2.pth')
    assert checkpoint_layout(tmp_path / 'list2.pth') is None


class _Quantizer(torch.nn.Module):
    def __init__(self, num_codebooks, codebook_size, **extra):
        super().__init__()
        self.num_codebooks, self.codebook_size = num_codebooks, codebook_size
        for key, value in extra.items():
            setattr(self, key, value)


class _Wrapper(torch.nn.Module):
    """A distributed wrapper's shape: the model under ``.module``."""

    def __init__(self, module):
        super().__init__()
        self.module = module


class _Encoder(torch.nn.Module):
    downsample_factor = 8


def test_tokenizer_layout_unwraps_nested_wrappers():
    tokenizer = SimpleNamespace(
        quantizer=_Wrapper(_Wrapper(_Quantizer(2, 64))),
        encoder=_Wrapper(_Encoder()))
    assert tokenizer_layout(tokenizer, [16]) == dict(
        codebook_sizes=[64, 64], sub_tokens=['pixel.0', 'pixel.1'],
        downsample_factor=8, grids={'16x16': [2, 2]})


def test_one_branch_and_no_regularizers_by_default():
    """A quantizer without ``num_branches`` is one branch; a tokenizer
    without ``regularizers`` names every sub-token ``pixel``."""
    tokenizer = SimpleNamespace(quantizer=_Quantizer(4, 8))
    assert tokenizer_layout(tokenizer)['sub_tokens'] == [
        'pixel.0', 'pixel.1', 'pixel.2', 'pixel.3']


def test_branch_names_skip_regularizers_without_a_valid_branch_or_key():
    regularizers = [
        SimpleNamespace(key='loss_no_branch'),          # no branch
        SimpleNamespace(branch=None, key='loss_none'),
        SimpleNamespace(branch=0),                      # no key
        SimpleNamespace(branch=1, key=''),
        SimpleNamespace(branch=2, key='loss_past_the_end'),
        SimpleNamespace(branch=-1, key='loss_negative'),
        SimpleNamespace(branch='1', key='loss_string_branch'),
    ]
    tokenizer = SimpleNamespace(quantizer=_Quantizer(2, 8, num_branches=2),
                                regularizers=regularizers)
    assert tokenizer_layout(tokenizer)['sub_tokens'] == ['pixel', 'pixel']


def test_branch_names_keep_keys_without_the_loss_prefix():
    regularizers = [SimpleNamespace(branch=0, key='clip_align'),
                    SimpleNamespace(branch=1, key='loss_dino')]
    tokenizer = SimpleNamespace(quantizer=_Quantizer(2, 8, num_branches=2),
                                regularizers=regularizers)
    assert tokenizer_layout(tokenizer)['sub_tokens'] == ['clip_align', 'dino']


def test_extra_sub_tokens_go_to_the_last_branch():
    """3 codebooks over 2 branches: one each, the third on the last."""
    regularizers = [SimpleNamespace(branch=0, key='loss_semantic_clip')]
    tokenizer = SimpleNamespace(quantizer=_Quantizer(3, 8, num_branches=2),
                                regularizers=regularizers)
    assert tokenizer_layout(tokenizer)['sub_tokens'] == [
        'semantic_clip', 'pixel', 'pixel']


def test_no_grids_without_a_downsample_factor():
    """A tokenizer whose encoder gives no factor has no grids, whatever
    image sizes it is asked for."""
    tokenizer = SimpleNamespace(quantizer=_Quantizer(1, 8))
    assert tokenizer_layout(tokenizer, [16, 32]) == dict(
        codebook_sizes=[8], sub_tokens=['pixel'], downsample_factor=None,
        grids={})


def test_make_layout_refuses_either_side_the_factor_does_not_divide():
    with pytest.raises(ValueError, match='^image_sizes need the downsample '
                       'factor$'):
        make_layout([4], image_sizes=[16])
    for size in ((100, 64), (64, 100)):
        key = f'{size[0]}x{size[1]}'
        with pytest.raises(ValueError, match=f'^image size {key} is not '
                           'divisible by the downsample factor 16$'):
            make_layout([4], downsample_factor=16, image_sizes=[size])


# ---------------------------------------------------------------------- grid
def test_reconstruction_grid_defaults_from_the_docstring():
    """4 pairs per row, 2 pixels of padding, scale 1: five 2x3 pairs make
    2 rows of 8 images, rows * (H + 2) + 2 by 8 * (W + 2) + 2."""
    x = torch.rand(5, 3, 2, 3) * 2 - 1
    grid = reconstruction_grid(x, -x)
    assert grid.shape == (2 * 4 + 2, 8 * 5 + 2, 3)
    assert grid.dtype == np.uint8
    # the fifth pair starts the second row
    fifth = grid[2 + 4:2 + 4 + 2, 2:2 + 3]
    want = ((x[4].clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 0)
    assert np.array_equal(fifth, want.to(torch.uint8).numpy())


def test_image_grid_defaults_from_the_docstring():
    """Padding 2 and no upscaling: three 1x1 images in rows of 2."""
    images = torch.tensor([0, 100, 250], dtype=torch.uint8)
    images = images.view(3, 1, 1, 1).expand(3, 3, 1, 1)
    grid = image_grid(images, 2)
    assert grid.shape == (2 * 3 + 2, 2 * 3 + 2, 3)
    assert grid[2, 2, 0] == 0 and grid[2, 5, 0] == 100
    assert grid[5, 2, 0] == 250
    assert (grid[5, 5] == 255).all()    # the missing 4th image: background


def test_image_grid_maps_minus_one_to_one_onto_0_to_255_clamped():
    values = torch.tensor([-3.0, -1.5, -1.0, 0.0, 0.5, 1.0, 1.5, 3.0])
    images = values.view(8, 1, 1, 1).expand(8, 3, 1, 1)
    grid = image_grid(images, 8, padding=0)
    assert grid.shape == (1, 8, 3)
    assert grid.dtype == np.uint8
    # (v + 1) * 127.5 rounded half to even: 0.5 -> 191.25 -> 191
    assert grid[0, :, 1].tolist() == [0, 0, 0, 128, 191, 255, 255, 255]


def test_image_grid_padding_is_white():
    images = torch.full((2, 3, 2, 2), -1.0)
    grid = image_grid(images, 2, padding=1)
    assert grid.shape == (4, 7, 3)
    border = np.ones((4, 7), bool)
    border[1:3, 1:3] = border[1:3, 4:6] = False
    assert (grid[border] == 255).all()
    assert (grid[~border] == 0).all()


def test_image_grid_scale_two_repeats_each_pixel():
    images = torch.arange(4, dtype=torch.uint8).view(1, 1, 2, 2) * 60
    images = images.expand(1, 3, 2, 2)
    grid = image_grid(images, 1, padding=0, scale=2)
    assert grid[:, :, 0].tolist() == [[0, 0, 60, 60], [0, 0, 60, 60],
                                      [120, 120, 180, 180],
                                      [120, 120, 180, 180]]


def test_grid_messages_in_full():
    x = torch.zeros(2, 3, 4, 4)
    with pytest.raises(ValueError, match=re.escape(
            'images must be [N, 3, H, W], got (3, 4, 4)')):
        image_grid(x[0], 2)
    message = ('originals and recons must both be [N, 3, H, W], got '
               '(2, 3, 4, 4) and (2, 3, 4, 5)')
    with pytest.raises(ValueError, match=re.escape(message)):
        reconstruction_grid(x, torch.zeros(2, 3, 4, 5))
    # same shapes, but not [N, 3, H, W]
    with pytest.raises(ValueError, match=re.escape(
            'originals and recons must both be [N, 3, H, W], got '
            '(3, 4, 4) and (3, 4, 4)')):
        reconstruction_grid(x[0], x[0])


def test_save_png_round_trip_and_folders(tmp_path):
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 14
    first = save_png(image, str(tmp_path / 'a.png'))
    assert first == tmp_path / 'a.png'
    assert np.array_equal(np.asarray(Image.open(first)), image)
    nested = save_png(image, tmp_path / 'x' / 'y' / 'b.png')
    assert nested == tmp_path / 'x' / 'y' / 'b.png'
    assert np.array_equal(np.asarray(Image.open(nested)), image)
    # a parent folder that is already there is fine
    again = save_png(255 - image, tmp_path / 'x' / 'y' / 'c.png')
    assert np.array_equal(np.asarray(Image.open(again)), 255 - image)
