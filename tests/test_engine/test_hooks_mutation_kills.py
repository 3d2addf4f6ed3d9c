"""Engine hook and wrapper values that mutation testing showed no test
pinned down (docs/testing.md lists the mutants these tests kill).

Stand-in runners (``SimpleNamespace``) keep every test well under a
second; expected values are worked by hand from the docstrings.
"""
import importlib.metadata
import itertools
import json
import os
import os.path as osp
import signal
import sys
from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.distributed as dist
from mmengine.logging import MessageHub
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import AmpOptimWrapper, OptimWrapper, OptimWrapperDict
from safetensors.torch import save_file
from torch import nn

from fqzoo.engine import TokenizerDistributedDataParallel
from fqzoo.engine.compat import (
    collect_env_lightly,
    format_code_once,
    load_from_local_safely,
)
from fqzoo.engine.hooks import (
    AtomicCheckpointHook,
    NonFiniteGuardHook,
    ReconstructionGridHook,
    SafeCheckpointHook,
    TokenLayoutHook,
)
from fqzoo.engine.hooks.codebook_health import CodebookHealthHook
from fqzoo.engine.hooks.non_finite import NonFiniteError, _StepGuard
from fqzoo.engine.hooks.random_state import RandomStateHook
from fqzoo.engine.optim_constructor import TokenizerOptimWrapperConstructor

HUBS = itertools.count()  # a new MessageHub for each use

# --------------------------------------------------------------------------
# CodebookHealthHook


def health_runner(stats, iteration, name):
    warnings = []
    model = SimpleNamespace(quantizer=SimpleNamespace(
        codebook_stats=lambda: stats))
    return SimpleNamespace(
        model=model, iter=iteration, logger=SimpleNamespace(
            warning=warnings.append),
        message_hub=MessageHub.get_instance(f'{name}_{next(HUBS)}')), warnings


def test_codebook_health_default_interval_is_100():
    stats = [dict(usage=0.5, perplexity=3.0, dead_codes=2)]
    hook = CodebookHealthHook()
    for iteration, logged in ((98, False), (99, True), (100, False)):
        runner, _ = health_runner(stats, iteration,
                                  f'health_interval_{iteration}')
        hook.after_train_iter(runner, 0)
        assert ('train/codebook0_usage' in
                runner.message_hub.log_scalars) == logged


def test_codebook_health_default_floor_is_a_tenth():
    hook = CodebookHealthHook()
    runner, warnings = health_runner([], 0, 'health_floor')
    hook.log_stats(runner, [dict(usage=0.5, perplexity=4.0, dead_codes=1),
                            dict(usage=0.11, perplexity=2.0, dead_codes=3)])
    assert warnings == []
    hook.log_stats(runner, [dict(usage=0.09, perplexity=2.0, dead_codes=7)])
    assert len(warnings) == 1


def test_codebook_health_warning_names_the_next_iteration():
    """``runner.iter`` is the 0-based iteration that just ran: the message
    gives its 1-based number; usage exactly at the floor is not below."""
    hook = CodebookHealthHook(usage_floor=0.25)
    runner, warnings = health_runner([], 41, 'health_message')
    hook.log_stats(runner, [dict(usage=0.25, perplexity=4.0, dead_codes=6),
                            dict(usage=0.125, perplexity=2.0, dead_codes=7)])
    assert warnings == ['Codebook 1 usage 0.125 is below 0.25 at iteration '
                        '42 (7 dead codes).']
    assert runner.message_hub.get_scalar(
        'train/codebook1_dead_codes').current() == 7.0


# --------------------------------------------------------------------------
# ReconstructionGridHook

PAD, SIZE = 2, 4  # make_grid's padding, the stand-in images' side


def image_value(k):
    """The constant value of stand-in image ``k < 16`` (all distinct, none
    half-way between two uint8 levels)."""
    return -0.9 + 0.12 * k


def loader(first, count, batch):
    """Batches of constant images ``first .. first + count - 1``."""
    values = [image_value(k) for k in range(first, first + count)]
    return [dict(inputs=torch.tensor(values[i:i + batch]).view(-1, 1, 1, 1)
                 .expand(-1, 3, SIZE, SIZE).clone())
            for i in range(0, count, batch)]


class GridModel(nn.Module):
    """``reconstruct`` gives ``-images``; the preprocessor shifts the
    images by 0.05 in training mode (a stand-in for training-time
    augmentation) and counts its calls."""

    def __init__(self):
        super().__init__()
        self.calls = 0

        def preprocess(data, training=False):
            self.calls += 1
            return dict(inputs=data['inputs'] + (0.05 if training else 0.0))

        self.data_preprocessor = preprocess

    def reconstruct(self, images):
        return -images


def grid_runner(tmp_path, iteration=0, val=None, train=None, model=None):
    added = []
    return SimpleNamespace(
        model=model or GridModel(), iter=iteration, work_dir=str(tmp_path),
        val_loop=None if val is None else SimpleNamespace(dataloader=val),
        train_dataloader=train if train is not None else loader(12, 4, 2),
        visualizer=SimpleNamespace(add_image=lambda name, image, step:
                                   added.append((name, image, step)))), added


def cells(grid, rows, cols):
    """The uint8 value at the centre of each grid cell, row by row."""
    assert grid.shape == (rows * (SIZE + PAD) + PAD,
                          cols * (SIZE + PAD) + PAD, 3)
    return [[int(grid[PAD + r * (SIZE + PAD) + 1, PAD + c * (SIZE + PAD) + 1,
                      0]) for c in range(cols)] for r in range(rows)]


def pixel(value):
    return round((value + 1) * 127.5)


def expected_cells(values, pairs_per_row):
    rows = []
    for i in range(0, len(values), pairs_per_row):
        row = []
        for v in values[i:i + pairs_per_row]:
            row += [pixel(v), pixel(-v)]
        rows.append(row)
    return rows


def test_grid_defaults_eight_images_four_pairs_a_row(tmp_path):
    runner, added = grid_runner(tmp_path, iteration=999,
                                val=loader(0, 12, 3))
    hook = ReconstructionGridHook()
    hook.after_train_iter(runner, 0)
    [(name, grid, step)] = added
    assert (name, step) == ('reconstructions', 1000)
    assert (tmp_path / 'vis' / 'iter_1000.png').is_file()
    # the first 8 validation images (not the training ones), read without
    # training-time preprocessing: 2 rows of 4 (original, -original) pairs
    assert cells(grid, 2, 8) == expected_cells(
        [image_value(k) for k in range(8)], 4)
    # 8 images: three batches of 3 read, not a fourth
    assert runner.model.calls == 3


def test_grid_interval_1000_by_default(tmp_path):
    runner, added = grid_runner(tmp_path, iteration=1000)
    ReconstructionGridHook().after_train_iter(runner, 0)
    assert added == []


def test_grid_reads_only_the_batches_it_needs(tmp_path):
    runner, added = grid_runner(tmp_path, val=loader(0, 12, 4))
    hook = ReconstructionGridHook(num_samples=8, pairs_per_row=8)
    hook.after_val_epoch(runner)
    assert runner.model.calls == 2
    assert cells(added[0][1], 1, 16) == expected_cells(
        [image_value(k) for k in range(8)], 8)


def test_grid_pairs_per_row_and_steps(tmp_path):
    runner, added = grid_runner(tmp_path, iteration=5, val=loader(0, 5, 5))
    hook = ReconstructionGridHook(interval=3, num_samples=5, pairs_per_row=2)
    hook.after_train_iter(runner, 0)
    hook.after_val_epoch(runner)
    assert [(name, step) for name, _, step in added] == [
        ('reconstructions', 6), ('reconstructions', 5)]
    assert sorted(p.name for p in (tmp_path / 'vis').iterdir()) == [
        'iter_6.png', 'val_iter_5.png']
    expected = expected_cells([image_value(k) for k in range(5)], 2)
    expected[-1] += [255, 255]  # the last row's empty cells: white padding
    assert cells(added[0][1], 3, 4) == expected


def test_grid_without_val_loop_uses_training_images(tmp_path):
    runner, added = grid_runner(tmp_path)
    ReconstructionGridHook(num_samples=1).after_val_epoch(runner)
    assert cells(added[0][1], 1, 2) == expected_cells([image_value(12)], 4)


def test_grid_interval_0_writes_only_after_validation(tmp_path):
    runner, added = grid_runner(tmp_path, iteration=9, val=loader(0, 2, 2))
    hook = ReconstructionGridHook(interval=0, num_samples=2)
    for iteration in range(3):
        runner.iter = iteration
        hook.after_train_iter(runner, 0)
    assert added == []
    hook.after_val_epoch(runner)
    assert [step for _, _, step in added] == [2]


def test_grid_num_samples_must_be_positive():
    assert ReconstructionGridHook(num_samples=1).num_samples == 1
    with pytest.raises(ValueError, match='^num_samples must be >= 1, got 0$'):
        ReconstructionGridHook(num_samples=0)


def test_grid_unwraps_a_model_wrapper(tmp_path, monkeypatch):
    class Wrapper(nn.Module):

        def __init__(self, module):
            super().__init__()
            self.module = module

    monkeypatch.setattr(
        'fqzoo.engine.hooks.reconstruction_grid.is_model_wrapper',
        lambda m: isinstance(m, Wrapper))
    runner, added = grid_runner(tmp_path, val=loader(0, 2, 2),
                                model=Wrapper(GridModel()))
    ReconstructionGridHook(num_samples=2).after_val_epoch(runner)
    assert cells(added[0][1], 1, 4) == expected_cells(
        [image_value(0), image_value(1)], 4)


# --------------------------------------------------------------------------
# TokenLayoutHook


def layout_model(codebook_sizes=(16, 12)):
    """A stand-in model: grids of the image sizes seen, factor 4."""
    return SimpleNamespace(token_layout=lambda sizes: dict(
        codebook_sizes=list(codebook_sizes), downsample_factor=4,
        grids={f'{h}x{w}': [h // 4, w // 4] for h, w in sizes}))


def layout_runner(model, train=None, **extra):
    loop = SimpleNamespace(dataloader=SimpleNamespace(dataset=train))
    return SimpleNamespace(model=model, cfg=SimpleNamespace(filename='g.py'),
                           _train_loop=loop, **extra)


def test_loaded_grids_become_image_sizes_of_later_checkpoints():
    hook = TokenLayoutHook()
    run = layout_runner(layout_model(), _load_from='a.pth')
    recorded = dict(codebook_sizes=[16, 12],
                    grids={'16x16': [4, 4], '8x12': [2, 3]})
    hook.after_load_checkpoint(run, dict(meta=dict(token_layout=recorded)))
    assert hook.image_sizes == {(16, 16), (8, 12)}
    checkpoint = {}
    hook.before_save_checkpoint(run, checkpoint)
    assert checkpoint['meta']['token_layout']['grids'] == {
        '8x12': [2, 3], '16x16': [4, 4]}


def test_checkpoints_without_a_layout_load_into_any_model():
    hook = TokenLayoutHook()
    hook.after_load_checkpoint(layout_runner(layout_model()),
                               dict(meta=dict(seed=3)))
    hook.after_load_checkpoint(layout_runner(layout_model()), {})
    # a model without token_layout ignores a recorded one
    hook.after_load_checkpoint(layout_runner(SimpleNamespace()), dict(
        meta=dict(token_layout=dict(grids={'16x16': [4, 4]}))))
    assert hook.image_sizes == set()


def test_codes_without_a_data_root_are_named_by_split():
    for codes in (SimpleNamespace(token_layout=dict(codebook_sizes=[32])),
                  SimpleNamespace(token_layout=dict(codebook_sizes=[32]),
                                  data_root='')):
        with pytest.raises(ValueError) as err:
            TokenLayoutHook().before_train(
                layout_runner(layout_model(), train=codes))
        assert str(err.value) == (
            'the train codes and the model of g.py do not belong together: '
            'their token layouts differ (codebook_sizes [32] in the train '
            'codes, [16, 12] in the model of g.py)')


def test_validation_batches_record_image_sizes_too():
    hook = TokenLayoutHook()
    hook.after_val_iter(None, 0, data_batch=dict(
        inputs=[torch.ones(3, 8, 12), torch.ones(3, 16, 16)]))
    hook.after_train_iter(None, 0, data_batch=dict(
        inputs=torch.ones(2, 3, 4, 20)))
    assert hook.image_sizes == {(8, 12), (16, 16), (4, 20)}


def test_other_data_batches_record_nothing():
    """Batches that are not dicts, and inputs without a shape, are skipped;
    a single ``[3, H, W]`` image records its size."""
    hook = TokenLayoutHook()
    hook.after_train_iter(None, 0, data_batch=[torch.ones(2, 3, 8, 8)])
    hook.after_train_iter(None, 0, data_batch=dict(
        inputs=['a.png', None, torch.ones(3, 4, 6)]))
    hook.after_val_iter(None, 0, data_batch=dict(inputs=torch.ones(3, 5, 7)))
    assert hook.image_sizes == {(4, 6), (5, 7)}


def test_layout_of_a_wrapped_model_is_recorded(monkeypatch):
    class Wrapper:

        def __init__(self, module):
            self.module = module

    monkeypatch.setattr('fqzoo.engine.hooks.token_layout.is_model_wrapper',
                        lambda m: isinstance(m, Wrapper))
    run = layout_runner(Wrapper(layout_model((8, 4))))
    checkpoint = {}
    TokenLayoutHook().before_save_checkpoint(run, checkpoint)
    assert checkpoint['meta']['token_layout']['codebook_sizes'] == [8, 4]


def test_every_split_is_checked_datasets_without_a_layout_skipped():
    """Image datasets (no ``token_layout``) are skipped, later splits still
    checked; codes without a ``tokenizer_checkpoint`` pass; a config
    without a file name is 'the config'."""
    good = SimpleNamespace(token_layout=dict(codebook_sizes=[16, 12]))
    bad = SimpleNamespace(token_layout=dict(codebook_sizes=[32]))

    def loop(dataset):
        return SimpleNamespace(dataloader=SimpleNamespace(dataset=dataset))

    hook = TokenLayoutHook()
    hook.before_train(SimpleNamespace(
        model=layout_model(), cfg=SimpleNamespace(filename='g.py'),
        _train_loop=loop(SimpleNamespace()), _val_loop=loop(good)))
    assert hook.codes_layout == good.token_layout
    assert hook.tokenizer is None
    for train, split in ((SimpleNamespace(), 'test'), (good, 'test'),
                         (SimpleNamespace(), 'val')):
        run = SimpleNamespace(
            model=layout_model(), cfg=SimpleNamespace(),
            _train_loop=loop(train),
            _val_loop=loop(bad if split == 'val' else None),
            _test_loop=loop(bad if split == 'test' else None))
        with pytest.raises(ValueError) as err:
            TokenLayoutHook().before_train(run)
        assert str(err.value) == (
            f'the {split} codes and the model of the config do not belong '
            'together: their token layouts differ (codebook_sizes [32] in '
            f'the {split} codes, [16, 12] in the model of the config)')


# --------------------------------------------------------------------------
# NonFiniteGuardHook


def test_non_finite_message_lists_only_the_non_finite_losses():
    """Logged losses are Python floats (float64): 1e39, beyond float32's
    range, is finite; a loss of several values shows as 'non-finite'."""
    hook = NonFiniteGuardHook(policy='skip', max_consecutive=3)
    hook._guards = dict(autoencoder=SimpleNamespace(skipped='loss nan'),
                        discriminator=SimpleNamespace(skipped=None))
    warnings = []
    runner = SimpleNamespace(iter=6, logger=SimpleNamespace(
        warning=warnings.append))
    hook.after_train_iter(runner, 0, outputs=dict(
        loss_rec=torch.tensor(float('nan')), loss_big=1e39,
        loss_pair=torch.tensor([1.0, float('-inf')]), acc=float('nan'),
        loss_gan=float('inf')))
    assert warnings == [
        'Non-finite values at iteration 7: loss_rec=nan, '
        'loss_pair=non-finite, loss_gan=inf; skipped the update of '
        'autoencoder (loss nan). 1 consecutive iteration(s) skipped, '
        'policy "skip", limit 3.']
    assert hook._guards['autoencoder'].skipped is None


# --------------------------------------------------------------------------
# compat.load_from_local_safely


def test_local_checkpoints_load_onto_the_map_location(tmp_path):
    path = tmp_path / 'iter_1.pth'
    torch.save(dict(state_dict={'w': torch.ones(2)}, meta=dict(iter=1)),
               path)
    checkpoint = load_from_local_safely(str(path), map_location='meta')
    assert checkpoint['state_dict']['w'].device.type == 'meta'
    assert checkpoint['meta'] == dict(iter=1)


def test_safetensors_metadata_is_json_decoded_where_it_is_json(tmp_path):
    path = tmp_path / 'model.safetensors'
    layout = dict(codebook_sizes=[16, 12], grids={'16x16': [4, 4]})
    save_file({'w': torch.arange(6.).view(2, 3)}, str(path), metadata=dict(
        token_layout=json.dumps(layout), step='120', note='not {json'))
    checkpoint = load_from_local_safely(str(path))
    assert checkpoint['meta'] == dict(token_layout=layout, step=120,
                                      note='not {json')
    assert torch.equal(checkpoint['state_dict']['w'],
                       torch.tensor([[0., 1., 2.], [3., 4., 5.]]))


class BlockImport:
    """A meta path finder refusing to import ``name``."""

    def __init__(self, name):
        self.name = name

    def find_spec(self, fullname, path=None, target=None):
        if fullname == self.name:
            raise ModuleNotFoundError(f'No module named {fullname!r}')
        return None


def test_environment_table_reads_torchvision_version_without_import(
        monkeypatch):
    """torchvision not imported: its ``TorchVision`` entry is the installed
    distribution's version, and torchvision stays unimported (an import
    would fail here)."""
    monkeypatch.delitem(sys.modules, 'torchvision', raising=False)
    monkeypatch.setattr(sys, 'meta_path',
                        [BlockImport('torchvision'), *sys.meta_path])
    env = collect_env_lightly()
    assert env['TorchVision'] == importlib.metadata.version('torchvision')
    assert 'torchvision' not in sys.modules
    assert env['PyTorch'] == torch.__version__


def test_environment_table_with_torchvision_imported_uses_it():
    torchvision = pytest.importorskip('torchvision')
    env = collect_env_lightly()
    assert env['TorchVision'] == torchvision.__version__
    assert sys.modules['torchvision'] is torchvision


def test_format_code_once_takes_a_named_style():
    """A style name (not a dict) is passed on as it is."""
    text = 'x = dict(a = 1,b=[1,2])\n'
    formatted = format_code_once(text, 'pep8')
    assert formatted == format_code_once.yapf_format_code(
        text, style_config='pep8')
    assert formatted[0] == 'x = dict(a=1, b=[1, 2])\n'
    # a style dict (MMEngine's call): its settings apply
    narrow = dict(based_on_style='pep8', column_limit=16)
    formatted = format_code_once(text, narrow)
    assert formatted == format_code_once.yapf_format_code(
        text, style_config=narrow)
    assert formatted[0] == 'x = dict(\n    a=1,\n    b=[1, 2])\n'


# --------------------------------------------------------------------------
# TokenizerDistributedDataParallel


class WrapModel(nn.Module):
    """A None child first, a frozen child, a container of a trainable and
    a frozen module, and a trainable child."""

    def __init__(self):
        super().__init__()
        self.register_module('absent', None)
        self.frozen = nn.Linear(2, 2).requires_grad_(False)
        self.heads = nn.ModuleList([nn.Linear(2, 3),
                                    nn.Linear(3, 2).requires_grad_(False)])
        self.body = nn.Linear(2, 2)
        with torch.no_grad():
            for i, p in enumerate(self.parameters()):
                p.copy_(torch.arange(p.numel()).view(p.shape) * 0.1 + i)


@pytest.fixture
def process_group(tmp_path):
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store',
                            rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def ddp_children(model):
    return [model.heads[0], model.body]


def test_wrapper_wraps_trainable_children_after_a_none_child(process_group):
    model = WrapModel()
    TokenizerDistributedDataParallel(model)
    assert isinstance(model.body, MMDistributedDataParallel)
    assert isinstance(model.heads[0], MMDistributedDataParallel)
    assert type(model.heads[1]) is nn.Linear
    assert type(model.frozen) is nn.Linear
    # DDP's defaults are broadcast_buffers=True; the wrapper's are False
    for ddp in ddp_children(model):
        assert ddp.broadcast_buffers is False
        assert ddp.find_unused_parameters is False
        assert ddp.gradient_as_bucket_view is False


def test_wrapper_passes_its_arguments_to_every_ddp(process_group):
    model = WrapModel()
    TokenizerDistributedDataParallel(model, broadcast_buffers=True,
                                     find_unused_parameters=True,
                                     gradient_as_bucket_view=True)
    for ddp in ddp_children(model):
        assert ddp.broadcast_buffers is True
        assert ddp.find_unused_parameters is True
        assert ddp.gradient_as_bucket_view is True


def test_wrapper_moves_every_child_with_get_device(process_group,
                                                   monkeypatch):
    """Every child goes through ``.to(get_device())``; a dtype stands in for
    the device so that this shows on a CPU-only machine."""
    monkeypatch.setattr('fqzoo.engine.model_wrapper.get_device',
                        lambda: torch.float64)
    model = WrapModel()
    TokenizerDistributedDataParallel(model)
    assert {n: p.dtype for n, p in model.named_parameters()} == {
        n: torch.float64 for n, _ in WrapModel().named_parameters()
        for n in [n.replace('body.', 'body.module.')
                  .replace('heads.0.', 'heads.0.module.')]}


def test_wrapper_loads_state_dicts_with_or_without_the_ddp_infix(
        process_group):
    model = WrapModel()
    TokenizerDistributedDataParallel(model)
    plain = WrapModel().state_dict()
    state = {k: v * -2 for k, v in plain.items()}
    # a checkpoint saved from MMEngine's own wrapper keeps the infix
    infixed = {k.replace('body.', 'body.module.'): v for k, v in state.items()}
    for checkpoint in (state, infixed):
        model.load_state_dict({k: v * 0 for k, v in state.items()})
        model.load_state_dict(checkpoint)
        assert torch.equal(model.body.module.weight,
                           -2 * WrapModel().body.weight.detach())
        assert torch.equal(model.heads[0].module.bias,
                           -2 * WrapModel().heads[0].bias.detach())
    assert list(model.state_dict()) == list(plain)


# --------------------------------------------------------------------------
# AtomicCheckpointHook


def checkpoint_runner(tmp_path, folders=False):
    """Saves write ``{out_dir}/{filename}`` holding the meta (a folder
    holding ``meta.json`` with ``folders``, as DeepSpeed saves); each call
    is recorded."""
    saves = []

    def save_checkpoint(out_dir, filename, file_client_args=None, **kwargs):
        saves.append((out_dir, filename, dict(
            file_client_args=file_client_args, **kwargs)))
        if out_dir.startswith('remote://'):
            return
        path = osp.join(out_dir, filename)
        if folders:
            os.mkdir(path)
            path = osp.join(path, 'meta.json')
        with open(path, 'w') as file:
            file.write(json.dumps(kwargs['meta']))

    return SimpleNamespace(
        work_dir=str(tmp_path), save_checkpoint=save_checkpoint,
        logger=SimpleNamespace(info=lambda message: None),
        message_hub=MessageHub.get_instance(f'atomic_{next(HUBS)}')), saves


class RemoteBackend:
    """A stand-in for a remote storage backend (not ``LocalBackend``)."""

    def __init__(self, files=()):
        self.files = set(files)
        self.removed = []

    @staticmethod
    def join_path(*parts):
        return '/'.join(parts)

    def isfile(self, path):
        return path in self.files

    def isdir(self, path):
        return False

    def remove(self, path):
        self.removed.append(path)


def test_remote_checkpoints_are_saved_as_mmengine_does(tmp_path):
    runner, saves = checkpoint_runner(tmp_path)
    hook = AtomicCheckpointHook(interval=1, by_epoch=False)
    hook.out_dir, hook.file_backend = 'remote://bucket/run', RemoteBackend()
    hook._save_checkpoint_with_step(runner, 7, dict(note='m'))
    [(out_dir, filename, kwargs)] = saves
    assert (out_dir, filename) == ('remote://bucket/run', 'iter_7.pth')
    assert kwargs['meta'] == dict(note='m') and kwargs['by_epoch'] is False
    assert (tmp_path / 'last_checkpoint').read_text() == \
        'remote://bucket/run/iter_7.pth'
    assert runner.message_hub.get_info('last_ckpt') == \
        'remote://bucket/run/iter_7.pth'


def test_max_keep_ckpts_0_keeps_every_checkpoint(tmp_path):
    runner, saves = checkpoint_runner(tmp_path)
    hook = AtomicCheckpointHook(interval=1, by_epoch=False, max_keep_ckpts=0)
    hook.before_train(runner)
    for step in (2, 4, 6):
        hook._save_checkpoint_with_step(runner, step, dict(step=step))
    assert sorted(p.name for p in tmp_path.glob('iter_*.pth')) == [
        'iter_2.pth', 'iter_4.pth', 'iter_6.pth']
    assert (tmp_path / 'last_checkpoint').read_text() == \
        str(tmp_path / 'iter_6.pth')


@contextmanager
def deadline(seconds):
    """Fail instead of hanging when the body loops forever."""
    def expired(*_):
        raise TimeoutError(f'still running after {seconds} s')

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_oldest_checkpoints_go_only_after_the_new_one_is_recorded(tmp_path):
    runner, saves = checkpoint_runner(tmp_path)
    hook = AtomicCheckpointHook(interval=1, by_epoch=False, max_keep_ckpts=2)
    hook.before_train(runner)
    events = []
    remove = hook.file_backend.remove

    def recording_remove(path):
        events.append((osp.basename(path), sorted(
            p.name for p in tmp_path.glob('iter_*.pth')),
            (tmp_path / 'last_checkpoint').read_text()))
        remove(path)

    hook.file_backend.remove = recording_remove
    with deadline(5):
        for step in (2, 4, 6, 6, 8):
            hook._save_checkpoint_with_step(runner, step, dict(step=step))
    assert [filename for _, filename, _ in saves] == [
        'iter_2.pth', 'iter_4.pth', 'iter_6.pth', 'iter_6.pth', 'iter_8.pth']
    assert events == [
        ('iter_2.pth', ['iter_2.pth', 'iter_4.pth', 'iter_6.pth'],
         str(tmp_path / 'iter_6.pth')),
        ('iter_4.pth', ['iter_4.pth', 'iter_6.pth', 'iter_8.pth'],
         str(tmp_path / 'iter_8.pth'))]
    assert sorted(p.name for p in tmp_path.glob('iter_*.pth')) == [
        'iter_6.pth', 'iter_8.pth']
    # what a resumed run's hook reads back
    assert runner.message_hub.get_info('keep_ckpt_ids') == [6, 8]
    assert runner.message_hub.get_info('last_ckpt') == \
        str(tmp_path / 'iter_8.pth')


def test_local_saves_pass_the_hook_arguments_to_the_runner(tmp_path):
    """As MMEngine's hook: save_optimizer, save_param_scheduler, by_epoch,
    backend_args and any extra keyword reach ``runner.save_checkpoint``
    (the defaults save the optimizer and the schedulers)."""
    runner, saves = checkpoint_runner(tmp_path)
    hook = AtomicCheckpointHook(interval=1, by_epoch=False)
    hook.before_train(runner)
    hook._save_checkpoint_with_step(runner, 3, dict(step=3))
    assert saves[-1] == (str(tmp_path), 'iter_3.pth', dict(
        file_client_args=None, save_optimizer=True,
        save_param_scheduler=True, meta=dict(step=3), by_epoch=False,
        backend_args=None))
    local = dict(backend='local')
    hook = AtomicCheckpointHook(interval=1, by_epoch=True,
                                save_optimizer=False,
                                save_param_scheduler=False,
                                backend_args=local, compress=True)
    hook.before_train(runner)
    hook._save_checkpoint_with_step(runner, 2, dict(epoch=2))
    assert saves[-1] == (str(tmp_path), 'epoch_2.pth', dict(
        file_client_args=None, save_optimizer=False,
        save_param_scheduler=False, meta=dict(epoch=2), by_epoch=True,
        backend_args=local, compress=True))
    assert (tmp_path / 'last_checkpoint').read_text() == \
        str(tmp_path / 'epoch_2.pth')


def test_checkpoint_folders_beyond_max_keep_ckpts_are_removed(tmp_path):
    runner, _ = checkpoint_runner(tmp_path, folders=True)
    hook = AtomicCheckpointHook(interval=1, by_epoch=False, max_keep_ckpts=1)
    hook.before_train(runner)
    with deadline(5):
        for step in (1, 2):
            hook._save_checkpoint_with_step(runner, step, dict(step=step))
    assert [p.name for p in tmp_path.glob('iter_*')] == ['iter_2.pth']
    assert (tmp_path / 'iter_2.pth' / 'meta.json').is_file()


# --------------------------------------------------------------------------
# TokenizerOptimWrapperConstructor


class GanModel(nn.Module):

    def __init__(self, discriminator=True):
        super().__init__()
        self.encoder = nn.Linear(2, 2)
        self.decoder = nn.Linear(2, 2)
        if discriminator:
            self.discriminator = nn.Linear(2, 1)


def param_groups(wrapper):
    """``(lr, ids of the parameters)`` of each group."""
    return [(group['lr'], {id(p) for p in group['params']})
            for group in wrapper.optimizer.param_groups]


def ids(*modules):
    return {id(p) for m in modules for p in m.parameters()}


def test_optimizers_split_the_discriminator_from_the_rest(monkeypatch):
    class Wrapper:

        def __init__(self, module):
            self.module = module

    monkeypatch.setattr('fqzoo.engine.optim_constructor.is_model_wrapper',
                        lambda m: isinstance(m, Wrapper))
    model = GanModel()
    wrappers = TokenizerOptimWrapperConstructor(dict(
        autoencoder=dict(optimizer=dict(type='SGD', lr=0.1),
                         paramwise_cfg=dict(custom_keys=dict(
                             decoder=dict(lr_mult=0.5)))),
        discriminator=dict(optimizer=dict(type='SGD', lr=0.3))))(
            Wrapper(model))
    assert sorted(wrappers.keys()) == ['autoencoder', 'discriminator']
    # DefaultOptimWrapperConstructor gives each parameter its own group
    # when paramwise_cfg is set; lr_mult applies to the decoder's
    groups = param_groups(wrappers['autoencoder'])
    assert {i for _, group in groups for i in group} == \
        ids(model.encoder, model.decoder)
    assert sorted(lr for lr, group in groups
                  if group <= ids(model.decoder)) == [0.05, 0.05]
    assert sorted(lr for lr, group in groups
                  if group <= ids(model.encoder)) == [0.1, 0.1]
    assert param_groups(wrappers['discriminator']) == [
        (0.3, ids(model.discriminator))]


def test_a_model_without_discriminator_gets_one_optimizer():
    model = GanModel(discriminator=False)
    wrappers = TokenizerOptimWrapperConstructor(dict(
        autoencoder=dict(optimizer=dict(type='SGD', lr=0.2))))(model)
    assert list(wrappers.keys()) == ['autoencoder']
    assert param_groups(wrappers['autoencoder']) == [
        (0.2, ids(model.encoder, model.decoder))]


def test_optim_wrapper_entries_are_checked():
    sgd = dict(optimizer=dict(type='SGD', lr=0.1))
    for cfg in (dict(autoencoder=sgd, generator=sgd),
                dict(discriminator=sgd)):
        with pytest.raises(KeyError) as err:
            TokenizerOptimWrapperConstructor(cfg)
        assert err.value.args == (
            'optim_wrapper needs an "autoencoder" entry and may have a '
            f'"discriminator" entry; got {sorted(cfg)}',)
    with pytest.raises(ValueError, match=r'^paramwise_cfg is not supported '
                       r'here; set it inside each entry$'):
        TokenizerOptimWrapperConstructor(dict(autoencoder=sgd),
                                         paramwise_cfg={})
    with pytest.raises(KeyError) as err:
        TokenizerOptimWrapperConstructor(dict(autoencoder=sgd))(GanModel())
    assert err.value.args == ('the model has a discriminator: optim_wrapper '
                              'needs a "discriminator" entry',)


# --------------------------------------------------------------------------
# RandomStateHook


def test_random_state_is_restored_only_at_its_iteration():
    hook = RandomStateHook()
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    hook.before_train_iter(SimpleNamespace(iter=0), 0)  # nothing loaded
    assert torch.equal(torch.rand(3), expected)
    checkpoint = dict(meta=dict(iter=7))
    hook.before_save_checkpoint(None, checkpoint)
    at_save = torch.rand(3)
    hook.after_load_checkpoint(None, checkpoint)
    torch.manual_seed(9)
    expected = torch.rand(2)
    torch.manual_seed(9)
    hook.before_train_iter(SimpleNamespace(iter=3), 0)  # another iteration
    assert torch.equal(torch.rand(2), expected)
    # the state was for the first iteration after loading only
    torch.manual_seed(9)
    hook.before_train_iter(SimpleNamespace(iter=7), 0)
    assert torch.equal(torch.rand(2), expected)
    hook.after_load_checkpoint(None, checkpoint)
    hook.before_train_iter(SimpleNamespace(iter=7), 0)
    assert torch.equal(torch.rand(3), at_save)


def test_cuda_generators_are_saved_and_restored(monkeypatch):
    """With CUDA (stood in for here), every device's generator state is
    saved and restored as CPU byte tensors; a resume without CUDA skips
    them."""
    states = [torch.arange(8, dtype=torch.uint8),
              torch.arange(8, 16, dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'get_rng_state_all',
                        lambda: [s.clone() for s in states])
    monkeypatch.setattr(torch.cuda, 'set_rng_state_all', restored.append)
    hook = RandomStateHook()
    checkpoint = dict(meta=dict(iter=4))
    hook.before_save_checkpoint(None, checkpoint)
    saved = checkpoint['random_state']['cuda']
    assert len(saved) == 2 and all(map(torch.equal, saved, states))
    hook.after_load_checkpoint(None, checkpoint)
    hook.before_train_iter(SimpleNamespace(iter=4), 0)
    [restored_states] = restored
    assert len(restored_states) == 2
    assert all(map(torch.equal, restored_states, states))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    hook.after_load_checkpoint(None, checkpoint)
    hook.before_train_iter(SimpleNamespace(iter=4), 0)
    assert len(restored) == 1


# --------------------------------------------------------------------------
# SafeCheckpointHook


def test_safe_checkpoint_converts_all_but_the_state_dict():
    model = nn.BatchNorm1d(2)
    state_dict = model.state_dict()
    hub = MessageHub.get_instance(f'safe_{next(HUBS)}')
    hub.update_scalar('train/loss', np.float32(0.5))
    hub.update_info('iter', np.int64(3))
    checkpoint = dict(state_dict=state_dict,
                      meta=dict(seed=np.int64(4), lrs=np.array([0.5, 0.25])),
                      message_hub=hub.state_dict())
    SafeCheckpointHook().before_save_checkpoint(None, checkpoint)
    # the state dict as it was, with the module versions load_state_dict
    # reads
    assert checkpoint['state_dict'] is state_dict
    assert checkpoint['state_dict']._metadata[''] == dict(version=2)
    meta = checkpoint['meta']
    assert meta == dict(seed=4, lrs=[0.5, 0.25])
    assert type(meta['seed']) is int and type(meta['lrs']) is list
    assert checkpoint['message_hub']['log_scalars']['train/loss'] == dict(
        log_history=[0.5], count_history=[1], max_length=1000000)
    assert checkpoint['message_hub']['runtime_info']['iter'] == 3


# --------------------------------------------------------------------------
# NonFiniteGuardHook: the step guard and the policies


def sgd(model, lr=0.5):
    return OptimWrapper(torch.optim.SGD(model.parameters(), lr=lr))


def guarded(model, check_grads=True):
    wrapper = sgd(model)
    names = {id(p): name for name, p in model.named_parameters()}
    return wrapper, _StepGuard(wrapper, names, check_grads)


def linear():
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -1.0]]))
        model.bias.fill_(0.25)
    return model


X = torch.tensor([[1.0, 2.0]])


def test_step_guard_applies_finite_steps_and_skips_a_nan_loss():
    model = linear()
    wrapper, guard = guarded(model)
    wrapper.update_params(model(X).sum() * float('nan'))
    assert guard.skipped == 'loss nan'
    assert torch.equal(model.weight, torch.tensor([[1.0, -1.0]]))
    guard.skipped = None
    # d(w.x + b)/dw = x, d/db = 1; SGD lr 0.5
    wrapper.update_params(model(X).sum())
    assert guard.skipped is None
    assert torch.equal(model.weight.detach(), torch.tensor([[0.5, -2.0]]))
    assert torch.equal(model.bias.detach(), torch.tensor([-0.25]))


def test_step_guard_names_non_finite_gradients():
    model = nn.Sequential(*[nn.Linear(1, 1) for _ in range(4)])
    wrapper, guard = guarded(model)
    for p in model.parameters():
        p.grad = torch.full_like(p, float('inf'))
    model[3].bias.grad = torch.ones(1)
    wrapper.step()
    assert guard.skipped == ('gradients of 0.weight, 0.bias, 1.weight, '
                             '1.bias, 2.weight and 2 more')
    model = linear()
    wrapper, guard = guarded(model)
    model.weight.grad = torch.tensor([[0.0, float('nan')]])
    model.bias.grad = torch.ones(1)
    wrapper.step()
    assert guard.skipped == 'gradients of weight'
    assert torch.equal(model.bias.detach(), torch.tensor([0.25]))


def test_step_guard_without_gradient_checks_steps_on_nan_gradients():
    model = linear()
    wrapper, guard = guarded(model, check_grads=False)
    model.weight.grad = torch.tensor([[0.0, float('nan')]])
    model.bias.grad = torch.ones(1)
    wrapper.step()
    assert guard.skipped is None
    assert torch.equal(model.bias.detach(), torch.tensor([-0.25]))


def test_step_guard_passes_keyword_arguments_on():
    model = linear()
    wrapper, guard = guarded(model)
    loss = (model(X) ** 2).sum()
    wrapper.backward(loss, retain_graph=True)
    wrapper.backward(loss)  # the graph was kept
    # (w.x + b)^2 = (-1 + 0.25)^2: d/db = 2 * -0.75, twice
    assert torch.equal(model.bias.grad, torch.tensor([-3.0]))
    calls = []
    wrapper.step(closure=lambda: calls.append('closure'))
    assert calls == ['closure'] and guard.skipped is None
    assert torch.equal(model.bias.detach(), torch.tensor([1.75]))


def test_step_guard_skips_with_the_other_ranks(monkeypatch):
    """The decision is a MAX all-reduce over ranks (a stand-in reduce
    here: another rank saw a NaN)."""
    import fqzoo.engine.hooks.non_finite as non_finite
    ops = []

    def all_reduce(tensor, op):
        ops.append((tensor.dtype, op))
        tensor.fill_(1)

    monkeypatch.setattr(non_finite.torch_dist, 'is_initialized', lambda: True)
    monkeypatch.setattr(non_finite.torch_dist, 'all_reduce', all_reduce)
    model = linear()
    wrapper, guard = guarded(model)
    wrapper.update_params(model(X).sum())
    assert guard.skipped == 'on another rank'
    assert ops == [(torch.int32, dist.ReduceOp.MAX)]
    assert torch.equal(model.weight, torch.tensor([[1.0, -1.0]]))


@pytest.mark.parametrize('device', [
    'cpu', pytest.param('cuda', marks=pytest.mark.skipif(
        not torch.cuda.is_available(), reason='needs a GPU'))])
def test_step_guard_reduces_its_flag_on_the_parameters_device(monkeypatch,
                                                              device):
    """NCCL reduces GPU tensors only: the flag the ranks all-reduce lives
    on the parameters' device, for a finite and a NaN step. (On the CPU
    this cannot fail; on a GPU it kills the six ``_bad`` mutants that make
    the flag on the CPU, which no CPU test can see.)"""
    import fqzoo.engine.hooks.non_finite as non_finite
    devices = []

    def all_reduce(tensor, op):
        devices.append(tensor.device)

    monkeypatch.setattr(non_finite.torch_dist, 'is_initialized', lambda: True)
    monkeypatch.setattr(non_finite.torch_dist, 'all_reduce', all_reduce)
    model = linear().to(device)
    wrapper, guard = guarded(model)
    wrapper.update_params(model(X.to(device)).sum())
    assert guard.skipped is None
    wrapper.update_params(model(X.to(device)).sum() * float('nan'))
    assert guard.skipped == 'loss nan'
    assert devices == [model.weight.device] * 2


def test_step_guard_of_an_empty_optimizer():
    wrapper = OptimWrapper(torch.optim.SGD([torch.zeros(0)], lr=1.0))
    wrapper.optimizer.param_groups[0]['params'] = []
    guard = _StepGuard(wrapper, {}, True)
    wrapper.backward(torch.tensor(float('-inf'), requires_grad=True))
    wrapper.step()
    assert guard.skipped == 'loss -inf'


def guard_runner(tmp_path, optim_wrapper, model=None, rank=0):
    warnings, saves = [], []
    return SimpleNamespace(
        model=model or linear(), optim_wrapper=optim_wrapper, iter=0,
        work_dir=str(tmp_path), rank=rank,
        logger=SimpleNamespace(warning=warnings.append),
        save_checkpoint=lambda *args, **kwargs: saves.append((args, kwargs)),
    ), warnings, saves


def test_guard_hook_defaults_skip_and_stop_after_10(tmp_path):
    model = linear()
    runner, warnings, saves = guard_runner(tmp_path, sgd(model), model)
    hook = NonFiniteGuardHook()
    hook.before_train(runner)
    assert list(hook._guards) == ['optimizer']
    for iteration in range(9):
        runner.iter = iteration
        runner.optim_wrapper.update_params(model(X).sum() * float('nan'))
        hook.after_train_iter(runner, 0, outputs=dict(loss=float('nan')))
    assert len(warnings) == 9 and saves == []
    assert warnings[-1].endswith('9 consecutive iteration(s) skipped, '
                                 'policy "skip", limit 10.')
    runner.iter = 9
    runner.optim_wrapper.update_params(model(X).sum() * float('nan'))
    with pytest.raises(NonFiniteError) as err:
        hook.after_train_iter(runner, 0, outputs=dict(loss=float('nan')))
    path = osp.join(str(tmp_path), 'iter_10.pth')
    assert str(err.value) == (
        'Non-finite values at iteration 10: loss=nan; skipped the update '
        'of optimizer (loss nan). 10 consecutive iteration(s) skipped, '
        'policy "skip", limit 10. Training stopped; saved the weights '
        f'from before the bad update(s) to {path}. Lower the learning '
        'rate, clip gradients or check the data, then resume with '
        '--resume.')
    [((work_dir, filename), kwargs)] = saves
    assert (work_dir, filename) == (str(tmp_path), 'iter_10.pth')
    assert not kwargs['by_epoch']  # iteration-based
    assert (tmp_path / 'last_checkpoint').read_text() == path


def test_guard_hook_counts_only_consecutive_skips(tmp_path):
    model = linear()
    runner, warnings, _ = guard_runner(tmp_path, sgd(model), model)
    hook = NonFiniteGuardHook(max_consecutive=2)
    hook.before_train(runner)
    for loss in (float('nan'), 1.0, float('nan')):
        runner.optim_wrapper.update_params(model(X).sum() * loss)
        hook.after_train_iter(runner, 0, outputs={})
    assert hook.consecutive == 1 and len(warnings) == 2
    assert warnings[0] == (
        'Non-finite values at iteration 1: no non-finite loss in the '
        'outputs; skipped the update of optimizer (loss nan). 1 '
        'consecutive iteration(s) skipped, policy "skip", limit 2.')


def test_guard_hook_stop_saves_on_rank_0_only(tmp_path):
    model = linear()
    runner, warnings, saves = guard_runner(tmp_path, sgd(model), model,
                                           rank=1)
    runner.iter = 4
    hook = NonFiniteGuardHook(policy='stop')
    hook.before_train(runner)
    runner.optim_wrapper.update_params(model(X).sum() * float('inf'))
    with pytest.raises(NonFiniteError, match='Training stopped'):
        hook.after_train_iter(runner, 0)
    assert [args for args, _ in saves] == [(str(tmp_path), 'iter_5.pth')]
    assert not (tmp_path / 'last_checkpoint').exists()


def test_guard_hook_raise_policy_raises_the_warning(tmp_path):
    model = linear()
    runner, warnings, saves = guard_runner(tmp_path, sgd(model), model)
    hook = NonFiniteGuardHook(policy='raise')
    hook.before_train(runner)
    runner.optim_wrapper.update_params(model(X).sum() * float('inf'))
    with pytest.raises(NonFiniteError) as err:
        hook.after_train_iter(runner, 0, outputs=dict(loss=float('inf')))
    assert [str(err.value)] == warnings and saves == []


def test_guard_hook_arguments_are_checked():
    with pytest.raises(ValueError, match=r"^policy must be one of \('skip', "
                       r"'stop', 'raise'\), got \"halt\"$"):
        NonFiniteGuardHook(policy='halt')
    with pytest.raises(ValueError,
                       match='^max_consecutive must be >= 1, got 0$'):
        NonFiniteGuardHook(max_consecutive=0)
    assert NonFiniteGuardHook(policy='stop', max_consecutive=1).policy == \
        'stop'


def test_guard_hook_guards_every_wrapper_once(tmp_path, monkeypatch):
    """Both optimizers of a GAN tokenizer, named in the messages by the
    unwrapped model's parameter names; AMP wrappers check losses only;
    a second before_train keeps the guards."""
    class Wrapper:

        def __init__(self, module):
            self.module = module

    monkeypatch.setattr('fqzoo.engine.hooks.non_finite.is_model_wrapper',
                        lambda m: isinstance(m, Wrapper))
    model = GanModel()
    amp = AmpOptimWrapper.__new__(AmpOptimWrapper)  # needs a GPU to build
    OptimWrapper.__init__(amp, torch.optim.SGD(
        model.discriminator.parameters(), lr=0.5))
    wrappers = OptimWrapperDict(autoencoder=sgd(model.encoder),
                                discriminator=amp)
    runner, _, _ = guard_runner(tmp_path, wrappers, Wrapper(model))
    hook = NonFiniteGuardHook()
    hook.before_train(runner)
    guards = dict(hook._guards)
    assert list(guards) == ['autoencoder', 'discriminator']
    assert guards['autoencoder'].check_grads is True
    assert guards['discriminator'].check_grads is False
    hook.before_train(runner)
    assert hook._guards == guards
    model.encoder.weight.grad = torch.full((2, 2), float('nan'))
    wrappers['autoencoder'].step()
    assert guards['autoencoder'].skipped == 'gradients of encoder.weight'
    runner.optim_wrapper = OptimWrapperDict(autoencoder=sgd(model.encoder),
                                            discriminator=amp)
    hook.before_train(runner)
    assert hook._guards['autoencoder'] is not guards['autoencoder']
    assert hook._guards['discriminator'] is guards['discriminator']
    guards = dict(hook._guards)
    runner.optim_wrapper = OptimWrapperDict(
        autoencoder=runner.optim_wrapper['autoencoder'],
        discriminator=sgd(model.discriminator))
    hook.before_train(runner)
    assert hook._guards['autoencoder'] is guards['autoencoder']
    assert hook._guards['discriminator'].wrapper is \
        runner.optim_wrapper['discriminator']
    # both skipped in one iteration: both named
    model.discriminator.weight.grad = torch.full((1, 2), float('inf'))
    model.encoder.weight.grad = torch.full((2, 2), float('nan'))
    runner.optim_wrapper['discriminator'].step()
    runner.optim_wrapper['autoencoder'].step()
    warnings = []
    runner.logger = SimpleNamespace(warning=warnings.append)
    hook.after_train_iter(runner, 0, outputs=dict(loss_gan=1.0))
    assert warnings == [
        'Non-finite values at iteration 1: no non-finite loss in the '
        'outputs; skipped the update of autoencoder (gradients of '
        'encoder.weight), discriminator (gradients of '
        'discriminator.weight). 1 consecutive iteration(s) skipped, '
        'policy "skip", limit 10.']


def test_step_guard_messages_list_losses_and_up_to_5_names():
    model = nn.Sequential(*[nn.Linear(1, 1, bias=False) for _ in range(6)])
    wrapper, guard = guarded(model)
    wrapper.backward(model(torch.ones(1, 1)).sum() * float('nan'))
    wrapper.backward(torch.tensor(float('inf'), requires_grad=True))
    wrapper.step()
    assert guard.skipped == 'loss nan, inf'
    for count, more in ((5, ''), (6, ' and 1 more')):
        for i, p in enumerate(model.parameters()):
            p.grad = torch.full_like(p, float('nan') if i < count else 0.0)
        wrapper.step()
        assert guard.skipped == ('gradients of 0.weight, 1.weight, '
                                 f'2.weight, 3.weight, 4.weight{more}')
    # a parameter the model does not name (a loss's own, say)
    single = nn.Parameter(torch.ones(2))
    wrapper = OptimWrapper(torch.optim.SGD([single], lr=0.5))
    guard = _StepGuard(wrapper, {}, True)
    single.grad = torch.tensor([1.0, float('nan')])
    wrapper.step()
    assert guard.skipped == 'gradients of ?'
    single.grad = torch.tensor([1.0, -1.0])
    wrapper.step()
    assert torch.equal(single.detach(), torch.tensor([0.5, 1.5]))


class _FlagSeen(Exception):
    """Raised by the recording all_reduce once it has seen the skip flag."""


@pytest.mark.parametrize('with_grads', [False, True])
def test_step_guard_flag_follows_meta_parameters(monkeypatch, with_grads):
    """The skip flag is all-reduced on the device of the parameters (NCCL
    reduces only GPU tensors): seen on PyTorch's `meta` device, on a CPU
    machine, with losses and gradients on the CPU."""
    import fqzoo.engine.hooks.non_finite as non_finite
    weight = nn.Parameter(torch.zeros(3, device='meta'))
    if with_grads:
        weight.grad = torch.zeros(3, device='meta')
    wrapper = SimpleNamespace(param_groups=[dict(params=[weight])],
                              backward=None, step=None)
    guard = _StepGuard(wrapper, {id(weight): 'w'}, check_grads=with_grads)
    seen = []

    def all_reduce(tensor, op):
        seen.append((tensor.device, tensor.dtype, tensor.shape, op))
        raise _FlagSeen

    monkeypatch.setattr(non_finite.torch_dist, 'is_available', lambda: True)
    monkeypatch.setattr(non_finite.torch_dist, 'is_initialized', lambda: True)
    monkeypatch.setattr(non_finite.torch_dist, 'all_reduce', all_reduce)
    with pytest.raises(_FlagSeen):
        guard._bad([torch.tensor(1.0)])
    assert seen == [(torch.device('meta'), torch.int32, torch.Size([]),
                     dist.ReduceOp.MAX)]
