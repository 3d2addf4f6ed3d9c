"""Pre-flight checks, offline weight folders, process groups and class
labels: what mutation testing showed no test pinned down (docs/testing.md
lists the mutants these tests kill).

Expected messages and values are written out by hand from the docstrings;
torch.distributed and torch.cuda are replaced by recorders where a test
needs a CUDA machine or a process group, and one test starts a real gloo
group of one process.
"""
import gc
import os
import socket
import weakref
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from huggingface_hub import constants as hf_constants
from mmengine.config import Config

from fqzoo.errors import InputError
from fqzoo.utils import offline, preflight
from fqzoo.utils.distributed import close_processes, init_processes
from fqzoo.utils.labels import class_labels
from fqzoo.utils.offline import (
    fetch_requirement,
    fetch_weights,
    fetchable,
    override_entries,
    write_override,
)
from fqzoo.utils.preflight import Check, Requirement, collect_requirements
from fqzoo.utils.shards import no_barrier


# ------------------------------------------------------------------ labels
def test_class_labels_default_name_in_the_message():
    with pytest.raises(InputError) as info:
        class_labels([1.0, 2.5])
    assert str(info.value) == ('labels must be whole numbers (class '
                               'indices), got 2.5 (item 1): refusing to '
                               'cut them to integers')


@pytest.mark.parametrize('values', [['1', '2'], np.array(['3'], dtype=object),
                                    [1 + 0j]])
def test_class_labels_refuse_values_that_are_not_numbers(values):
    # numpy would turn '1' and 1+0j into 1: the check must refuse them first
    with pytest.raises(InputError, match='must be whole numbers, got'):
        class_labels(values)


def test_class_labels_refusal_shows_the_first_8_values_flattened():
    values = np.array([[str(i) for i in range(5)],
                       [str(i) for i in range(5, 10)]])
    with pytest.raises(InputError) as info:
        class_labels(values, what='y')
    assert str(info.value) == ("y must be whole numbers, got <U1 values "
                               "['0', '1', '2', '3', '4', '5', '6', '7']")


def test_class_labels_refusal_lists_the_first_8_bad_items_of_2d():
    values = np.arange(20, dtype=np.float64).reshape(2, 10) + 0.5
    values[0, 0] = 4.0  # whole: not listed
    with pytest.raises(InputError) as info:
        class_labels(values, what='classes')
    shown = ', '.join(f'{i + 0.5} (item {i})' for i in range(1, 9))
    assert str(info.value) == (f'classes must be whole numbers (class '
                               f'indices), got {shown}: refusing to cut '
                               f'them to integers')


def test_class_labels_of_a_2d_array_keep_its_shape():
    out = class_labels(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert out.dtype == np.int64 and out.tolist() == [[1, 2], [3, 4]]


# ------------------------------------------------------------- distributed
class FakeGroup:
    """torch.distributed and torch.cuda replaced: records what
    init_processes asks for."""

    def __init__(self, monkeypatch, cuda, rank=3, world_size=5):
        self.calls = []
        self.devices = []
        self.initialized = False
        self.rank, self.world_size = rank, world_size
        monkeypatch.setattr(torch.cuda, 'is_available', lambda: cuda)
        monkeypatch.setattr(torch.cuda, 'set_device', self.devices.append)
        monkeypatch.setattr(dist, 'is_initialized', lambda: self.initialized)
        monkeypatch.setattr(dist, 'init_process_group', self.init)
        monkeypatch.setattr(dist, 'get_rank', self.get_rank)
        monkeypatch.setattr(dist, 'get_world_size', self.get_world_size)
        monkeypatch.setattr(dist, 'barrier', self.barrier)

    def init(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        self.initialized = True

    def get_rank(self):
        assert self.initialized
        return self.rank

    def get_world_size(self):
        assert self.initialized
        return self.world_size

    def barrier(self):
        pass


@pytest.mark.parametrize('cuda', [False, True])
def test_init_processes_alone_by_default(monkeypatch, cuda):
    FakeGroup(monkeypatch, cuda)
    ctx = init_processes()
    assert (ctx.rank, ctx.world_size) == (0, 1)
    assert ctx.device == torch.device('cuda' if cuda else 'cpu')
    assert ctx.barrier is no_barrier
    assert not dist.is_initialized()


@pytest.mark.parametrize('device', ['cpu', 'cuda:1'])
def test_init_processes_alone_takes_the_device_asked_for(monkeypatch,
                                                         device):
    FakeGroup(monkeypatch, cuda=True)
    ctx = init_processes('none', device)
    assert (ctx.rank, ctx.world_size, ctx.device) == (0, 1,
                                                      torch.device(device))


def test_init_processes_refuses_other_launchers(monkeypatch):
    group = FakeGroup(monkeypatch, cuda=False)
    with pytest.raises(ValueError) as info:
        init_processes('slurm')
    assert str(info.value) == ("launcher must be 'none' or 'pytorch', got "
                               "'slurm'")
    assert not group.calls


@pytest.mark.parametrize('local_rank', [None, '2'])
def test_init_processes_under_torchrun_with_cuda(monkeypatch, local_rank):
    if local_rank is None:
        monkeypatch.delenv('LOCAL_RANK', raising=False)
    else:
        monkeypatch.setenv('LOCAL_RANK', local_rank)
    index = int(local_rank or 0)
    group = FakeGroup(monkeypatch, cuda=True)
    ctx = init_processes('pytorch')
    assert group.devices == [index]
    assert group.calls == [((), {'backend': 'nccl',
                                 'timeout': timedelta(hours=6)})]
    assert (ctx.rank, ctx.world_size) == (3, 5)
    assert ctx.device == torch.device('cuda', index)
    assert ctx.barrier == group.barrier


@pytest.mark.parametrize('cuda,device', [(False, None), (True, 'cpu'),
                                         (False, 'cpu')])
def test_init_processes_under_torchrun_on_cpu(monkeypatch, cuda, device):
    monkeypatch.setenv('LOCAL_RANK', '1')
    group = FakeGroup(monkeypatch, cuda, rank=1, world_size=2)
    ctx = init_processes('pytorch', device)
    assert group.devices == []
    assert group.calls == [((), {'backend': 'gloo',
                                 'timeout': timedelta(hours=6)})]
    assert (ctx.rank, ctx.world_size, ctx.device) == (1, 2,
                                                      torch.device('cpu'))
    assert ctx.barrier == group.barrier


def test_init_processes_joins_a_group_already_there(monkeypatch):
    monkeypatch.setenv('LOCAL_RANK', '0')
    group = FakeGroup(monkeypatch, cuda=False, rank=4, world_size=6)
    group.initialized = True
    ctx = init_processes('pytorch', 'cpu')
    assert group.calls == []
    assert (ctx.rank, ctx.world_size) == (4, 6)


def test_init_processes_real_gloo_group_of_one(monkeypatch):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    for name, value in [('RANK', '0'), ('WORLD_SIZE', '1'),
                        ('LOCAL_RANK', '0'), ('MASTER_ADDR', '127.0.0.1'),
                        ('MASTER_PORT', str(port))]:
        monkeypatch.setenv(name, value)
    assert not dist.is_initialized()
    try:
        ctx = init_processes('pytorch', 'cpu')
        assert dist.is_initialized() and dist.get_backend() == 'gloo'
        assert (ctx.rank, ctx.world_size, ctx.device) == (
            0, 1, torch.device('cpu'))
        ctx.barrier()
    finally:
        close_processes()
    assert not dist.is_initialized()


# --------------------------------------------------------------- preflight
SERVER = 'https://weights.example.org/files/w.pth'
NOT_THERE = "not set, not in the library's cache, no download from here"


class Weights:
    """A component with one weight file: unset ``checkpoint`` means the
    library downloads it from SERVER."""

    def __init__(self, checkpoint=None, depth=2, cache=None,
                 source=SERVER, twice=False):
        pass

    @classmethod
    def external_requirements(cls, args):
        req = Requirement(what=f'weights of depth {args["depth"]}',
                          arg='checkpoint', path=args['checkpoint'],
                          source=args['source'], cache=args['cache'],
                          server=SERVER)
        return [req, req] if args['twice'] else [req]


@pytest.fixture
def asked(monkeypatch):
    """Every server answers; the origins asked are recorded."""
    origins = []
    monkeypatch.setattr(preflight, '_server_answers',
                        lambda origin: origins.append(origin) or True)
    monkeypatch.delenv('FQZOO_OFFLINE', raising=False)
    monkeypatch.delenv('HF_HUB_OFFLINE', raising=False)
    return origins


@pytest.mark.parametrize('value', ['1', 'true', 'TRUE', ' Yes ', 'yes',
                                   'on', 'On'])
def test_offline_variable_words_that_mean_offline(asked, monkeypatch,
                                                  value):
    monkeypatch.setenv('FQZOO_OFFLINE', value)
    assert not preflight.server_answers(SERVER)
    assert asked == []


@pytest.mark.parametrize('value', ['0', 'false', 'off', 'no', '', 'XXXX'])
def test_offline_variable_other_words_leave_the_server_asked(
        asked, monkeypatch, value):
    monkeypatch.setenv('FQZOO_OFFLINE', value)
    assert preflight.server_answers(SERVER)
    assert asked == ['https://weights.example.org']


def test_unset_online_asks_the_requirements_server(asked):
    req = Requirement(what='w', arg='checkpoint', path=None, source='s',
                      server=SERVER)
    assert preflight.requirement_status(req) == 'download'
    assert asked == ['https://weights.example.org']
    assert preflight.requirement_status(req, online=False) == 'missing'
    assert len(asked) == 1


def test_ensure_and_dry_run_pass_online_on(monkeypatch, capsys):
    monkeypatch.setenv('FQZOO_OFFLINE', '1')  # asking would say no
    cfg = dict(model=dict(type=Weights, depth=3))
    checks = preflight.ensure_requirements(cfg, 'c.py', online=True)
    assert [c.status for c in checks] == ['download']
    assert preflight.dry_run(cfg, 'c.py', online=True) == 0
    assert capsys.readouterr().out == (
        f'[download] weights of depth 3: downloads from {SERVER} '
        '(model.checkpoint)\n')
    with pytest.raises(preflight.MissingRequirementsError,
                       match='c.py needs 1 file'):
        preflight.ensure_requirements(cfg, 'c.py', online=False)


def test_dry_run_prints_the_summary_then_the_message(tmp_path, capsys):
    cfg = dict(load_from=str(tmp_path / 'absent.pth'))
    assert preflight.dry_run(cfg, 'cfgs/run.py', online=False) == 1
    assert capsys.readouterr().out == (
        f'[ missing] checkpoint to load: {tmp_path}/absent.pth '
        '(load_from)\n'
        '\n'
        'cfgs/run.py needs 1 file(s) or folder(s) that are not on this '
        'machine:\n'
        '1. checkpoint to load\n'
        f'    path: {tmp_path}/absent.pth\n'
        '    config key: load_from\n'
        '    get it from: a checkpoint written by tools/train.py (or '
        'converted by tools/convert/)\n'
        'Set a path in the config or with --cfg-options KEY=PATH; '
        '`tools/train.py CONFIG --dry-run` checks again.\n')


def _req(what, path=None, keys=('k',), fetch=None, **kwargs):
    return Requirement(what=what, arg='checkpoint', path=path,
                       source=f'source of {what}', fetch=fetch, keys=keys,
                       **kwargs)


def test_missing_message_in_full_with_the_fetch_command():
    checks = [
        Check(_req('A', path='a.pth'), 'found'),
        Check(_req('B', path='b.pth', keys=('m.b', 'v.b')), 'missing'),
        Check(_req('C', keys=('m.c',), fetch=lambda: 'c.pth'), 'missing'),
        Check(_req('D', cache='/cache/d'), 'cached'),
        Check(_req('E', server=SERVER), 'download'),
    ]
    message = preflight.missing_message(checks, 'configs/x/my_cfg.py')
    assert message.split('\n') == [
        'configs/x/my_cfg.py needs 2 file(s) or folder(s) that are not on '
        'this machine:',
        '1. B',
        '    path: b.pth',
        '    config key: m.b, v.b',
        '    get it from: source of B',
        '2. C',
        f'    path: {NOT_THERE}',
        '    config key: m.c',
        '    get it from: source of C',
        '',
        "The weight files download through their libraries' hubs on a "
        'machine with network access:',
        '    python tools/fetch_weights.py configs/x/my_cfg.py --out DIR',
        'then run with DIR/my_cfg_offline.py as the config (it points '
        'every weight path into DIR).',
        'Set a path in the config or with --cfg-options KEY=PATH; '
        '`tools/train.py CONFIG --dry-run` checks again.',
    ]


def test_missing_message_without_fetchable_files_has_no_fetch_command():
    checks = [Check(_req('A', fetch=lambda: 'a.pth'), 'cached'),
              Check(_req('B', path='data/b'), 'missing')]
    assert preflight.missing_message(checks, 'x.py') == (
        'x.py needs 1 file(s) or folder(s) that are not on this machine:\n'
        '1. B\n'
        '    path: data/b\n'
        '    config key: k\n'
        '    get it from: source of B\n'
        'Set a path in the config or with --cfg-options KEY=PATH; '
        '`tools/train.py CONFIG --dry-run` checks again.')


def test_checks_summary_one_line_per_status():
    checks = [
        Check(_req('A', path='a.pth', keys=('k.a',)), 'found'),
        Check(_req('B', cache='/cache/b', keys=('k.b',)), 'cached'),
        Check(_req('C', server=SERVER, keys=('k.c', 'k.c2')), 'download'),
        Check(_req('D', path='d.pth', keys=('k.d',)), 'missing'),
        Check(_req('E', keys=('k.e',)), 'missing'),
    ]
    assert preflight.checks_summary(checks) == (
        '[   found] A: a.pth (k.a)\n'
        '[  cached] B: /cache/b (k.b)\n'
        f'[download] C: downloads from {SERVER} (k.c, k.c2)\n'
        '[ missing] D: d.pth (k.d)\n'
        '[ missing] E: not set (k.e)')
    assert preflight.checks_summary([]) == (
        'The config needs nothing from outside fqzoo.')


def test_torch_hub_download_shows_progress_and_runs_once(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    src = tmp_path / 'served' / 'net-1234.pth'
    src.parent.mkdir()
    src.write_bytes(b'first weights')
    url = src.as_uri()
    got = preflight.download_torch_hub_file(url)
    assert got == str(tmp_path / 'torch/hub/checkpoints/net-1234.pth')
    assert Path(got).read_bytes() == b'first weights'
    assert '100%' in capsys.readouterr().err  # tqdm's bar
    src.write_bytes(b'second')
    assert preflight.download_torch_hub_file(url) == got
    assert Path(got).read_bytes() == b'first weights'
    assert capsys.readouterr().err == ''


# ----------------------------------------------------------------- offline
def test_fetchable_needs_a_fetch_a_name_and_no_file_in_place(tmp_path):
    there = tmp_path / 'there.pth'
    there.write_bytes(b'w')
    reqs = [_req('unset', fetch=str, filename='u.pth'),
            _req('no fetch', filename='n.pth'),
            _req('no name', fetch=str),
            _req('in place', path=str(there), fetch=str, filename='p.pth'),
            _req('absent', path=str(tmp_path / 'absent.pth'), fetch=str,
                 filename='a.pth')]
    assert [r.what for r in fetchable(reqs)] == ['unset', 'absent']


def _served(tmp_path, name, content):
    src = tmp_path / 'cache' / name
    src.parent.mkdir(exist_ok=True)
    src.write_bytes(content)
    return src


def test_fetch_requirement_logs_and_links(tmp_path):
    src = _served(tmp_path, 'blob.safetensors', b'abc')
    out = tmp_path / 'out'
    out.mkdir()
    req = _req('Net weights', filename='net.safetensors',
               fetch=lambda: str(src))
    log = []
    dest = fetch_requirement(req, out, log.append)
    assert dest == out / 'net.safetensors' and dest.read_bytes() == b'abc'
    assert os.path.samefile(dest, src)  # a hard link, not a copy
    assert log == ['fetching Net weights from source of Net weights',
                   f'saved    {dest}']
    log.clear()
    assert fetch_requirement(req, out, log.append) == dest
    assert log == [f'have     Net weights: {dest}']


def test_fetch_requirement_copies_where_linking_fails(tmp_path,
                                                      monkeypatch):
    src = _served(tmp_path, 'blob.bin', b'copied bytes')

    def no_link(a, b):
        raise OSError('cross-device link')

    monkeypatch.setattr(os, 'link', no_link)
    req = _req('W', filename='w.safetensors', fetch=lambda: str(src))
    dest = fetch_requirement(req, tmp_path, lambda msg: None)
    # the suffix of what the library downloaded tells the format
    assert dest == tmp_path / 'w.bin'
    assert dest.read_bytes() == b'copied bytes'
    assert not os.path.samefile(dest, src)


def test_fetch_requirement_has_what_the_library_fell_back_to(tmp_path):
    """A .bin saved for a requirement named .safetensors is found by the
    next run: no second fetch."""
    src = _served(tmp_path, 'blob.bin', b'fallback')
    out = tmp_path / 'out'
    out.mkdir()
    fetched = []

    def fetch():
        fetched.append(1)
        return str(src)

    req = _req('W', filename='w.safetensors', fetch=fetch)
    assert fetch_requirement(req, out, lambda msg: None) == out / 'w.bin'
    log = []
    assert fetch_requirement(req, out, log.append) == out / 'w.bin'
    assert fetched == [1]
    assert log == [f'have     W: {out / "w.bin"}']


def test_fetch_requirement_clears_a_stale_partial_file(tmp_path):
    src = _served(tmp_path, 'blob.pth', b'new')
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'w.pth.part').write_bytes(b'half of an interrupted fetch')
    req = _req('W', filename='w.pth', fetch=lambda: str(src))
    fetch_requirement(req, out, lambda msg: None)
    assert sorted(p.name for p in out.iterdir()) == ['w.pth']
    assert (out / 'w.pth').read_bytes() == b'new'


def test_override_entries_keep_only_the_paths_set():
    cfg = Config(dict(model=dict(a=1, b=dict(c=2, d=3),
                                 e=[dict(f=4), dict(g=5)]),
                      other=7))
    entries = override_entries(cfg, {'model.b.c': 'X', 'model.e.1.g': 'Y'})
    assert entries == {'model': {'b': {'c': 'X'},
                                 'e': [{'f': 4}, {'g': 'Y'}]}}
    assert cfg.model.b.c == 2 and cfg.model.e[1].g == 5


def test_write_override_lines_stay_within_79_characters(tmp_path):
    base = tmp_path / 'base.py'
    base.write_text('x = 1\n')
    fits = {'b': 'y' * 30, 'a': 'x' * 23}   # "model = {...}": 79 chars
    wraps = {'b': 'y' * 30, 'a': 'x' * 25}  # "data = {...}": 80 chars
    path = write_override(base, {'model': fits, 'data': wraps},
                          tmp_path / 'o.py', 'first line\nsecond line')
    text = path.read_text()
    assert text == (
        '# first line\n'
        '# second line\n'
        f"_base_ = '{base}'\n"
        f"model = {{'b': '{'y' * 30}', 'a': '{'x' * 23}'}}\n"
        f"data = {{'b': '{'y' * 30}',\n"
        f"        'a': '{'x' * 25}'}}\n")
    assert max(len(line) for line in text.splitlines()
               if not line.startswith('_base_')) == 79


def test_fetch_weights_into_a_new_nested_folder(tmp_path, monkeypatch):
    config = tmp_path / 'cfgs' / 'my_run.py'
    config.parent.mkdir()
    config.write_text("model = dict(w=None, depth=2)\nother = 'kept'\n")
    src = _served(tmp_path, 'w-abc.pth', b'weights')
    req = _req('W', filename='w.pth', fetch=lambda: str(src),
               keys=('model.w',))
    monkeypatch.setattr(offline, 'collect_requirements', lambda cfg: [req])
    out = tmp_path / 'a' / 'b' / 'weights'
    log = []
    override = fetch_weights(config, out, log=log.append)
    assert override == out / 'my_run_offline.py'
    assert log == ['fetching W from source of W', f'saved    {out}/w.pth']
    assert override.read_text() == (
        '# Written by tools/fetch_weights.py: my_run with its weight files '
        'read from this folder.\n'
        '# Run this config where the folder is (copy the folder anywhere; '
        'the paths follow it).\n'
        f"_base_ = '{config}'\n"
        "model = {'w': '{{fileDirname}}/w.pth'}\n")
    cfg = Config.fromfile(str(override))
    assert cfg.model.to_dict() == {'w': str(out / 'w.pth'), 'depth': 2}
    assert cfg.other == 'kept'


def test_hf_hub_cached_reads_the_revision_after_the_at(tmp_path,
                                                       monkeypatch):
    monkeypatch.setattr(hf_constants, 'HF_HUB_CACHE', str(tmp_path))
    folder = tmp_path / 'models--org--net'
    (folder / 'refs').mkdir(parents=True)
    (folder / 'refs' / 'main').write_text('aaa111')
    (folder / 'refs' / 'v2').write_text('bbb222')
    for commit, name in [('aaa111', 'model.safetensors'),
                         ('bbb222', 'model.bin')]:
        path = folder / 'snapshots' / commit / name
        path.parent.mkdir(parents=True)
        path.write_bytes(b'w')
    names = ['model.safetensors', 'model.bin']
    assert preflight.hf_hub_cached('org/net', names) == str(
        folder / 'snapshots/aaa111/model.safetensors')
    assert preflight.hf_hub_cached('org/net@v2', names) == str(
        folder / 'snapshots/bbb222/model.bin')
    assert preflight.hf_hub_cached('org/net@v3', names) is None


class Plain:
    """A component that needs nothing from outside."""

    def __init__(self, checkpoint=None):
        pass


def _weights(depth=2, path=None, keys=(), cache=None, source=SERVER):
    return Requirement(what=f'weights of depth {depth}', arg='checkpoint',
                       path=path, source=source, cache=cache, server=SERVER,
                       keys=keys)


LOAD_FROM_SOURCE = ('a checkpoint written by tools/train.py (or converted '
                    'by tools/convert/)')


def test_collect_requirements_walks_merges_and_keeps_config_order():
    cfg = dict(
        model=dict(type=Weights,
                   backbone=dict(type=Weights, checkpoint='w.pth')),
        val=[dict(type=Weights, checkpoint='w.pth', depth=2),
             (dict(type=Weights, depth=5), dict(type=Weights, depth=5)),
             dict(type=Weights, checkpoint='w.pth', twice=True)],
        test=dict(type=Weights, not_an_argument=1),
        other=[dict(type='NoSuchComponent', checkpoint='x.pth'),
               dict(type='VQ'), dict(type=3), dict(checkpoint='y.pth'),
               dict(type=Plain, checkpoint='z.pth')],
        load_from=Path('runs/last.pth'))
    assert collect_requirements(cfg) == [
        Requirement(what='checkpoint to load', arg='load_from',
                    path='runs/last.pth', source=LOAD_FROM_SOURCE,
                    keys=('load_from',)),
        # model's own config does not fit Weights (backbone): skipped,
        # but what it holds is walked
        _weights(path='w.pth', keys=('model.backbone.checkpoint',
                                     'val.0.checkpoint',
                                     'val.2.checkpoint')),
        _weights(5, keys=('val.1.0.checkpoint', 'val.1.1.checkpoint')),
    ]


def test_collect_requirements_keeps_apart_what_differs():
    cfg = dict(a=dict(type=Weights), b=dict(type=Weights, depth=3),
               c=dict(type=Weights, checkpoint='c.pth'),
               d=dict(type=Weights, cache='/cache/d'),
               e=dict(type=Weights, source='elsewhere'))
    assert collect_requirements(cfg) == [
        _weights(keys=('a.checkpoint',)),
        _weights(3, keys=('b.checkpoint',)),
        _weights(path='c.pth', keys=('c.checkpoint',)),
        _weights(cache='/cache/d', keys=('d.checkpoint',)),
        _weights(source='elsewhere', keys=('e.checkpoint',)),
    ]


@pytest.mark.parametrize('load_from', [None, ''])
def test_no_checkpoint_to_load_when_load_from_is_empty(load_from):
    assert collect_requirements(dict(load_from=load_from)) == []
    assert collect_requirements(dict(model=dict(a=1))) == []


def test_component_args_are_the_config_over_the_defaults():
    assert preflight.component_args(Weights, dict(type=Weights, depth=4)) \
        == dict(checkpoint=None, depth=4, cache=None, source=SERVER,
                twice=False)
    assert preflight.component_args(Weights, dict(type='x', nope=1)) is None


def test_torch_hub_requirement_by_value(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    served = _served(tmp_path, 'net-12ab.pth', b'net weights')
    url = served.as_uri()
    hub = tmp_path / 'torch' / 'hub' / 'checkpoints'
    assert preflight.torch_hub_file(url) == hub / 'net-12ab.pth'
    req = preflight.torch_hub_requirement('Net', 'ckpt', None, url)
    assert req == Requirement(
        what='Net', arg='ckpt', path=None,
        source=f'{url} (or put it in {hub}/)', filename='net-12ab.pth',
        cache=None, server=url)
    assert req.fetch() == str(hub / 'net-12ab.pth')
    assert (hub / 'net-12ab.pth').read_bytes() == b'net weights'
    cached = preflight.torch_hub_requirement('Net', 'ckpt', 'p.pth', url)
    assert (cached.path, cached.cache) == ('p.pth', str(hub / 'net-12ab.pth'))


def test_registered_type_names_are_asked_for_requirements():
    cfg = dict(train=dict(dataset=dict(type='CodeDataset',
                                       data_root='codes/x')))
    reqs = collect_requirements(cfg)
    assert [(r.what, r.path, r.keys) for r in reqs] == [
        ('extracted codes (CodeDataset)', 'codes/x/manifest.json',
         ('train.dataset.data_root',))]


def test_close_processes_frees_a_group_held_in_a_reference_cycle(tmp_path):
    """A group an object cycle still holds (a finished Runner's model) is
    freed when the processes close, not at the interpreter's exit."""
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/pg',
                            rank=0, world_size=1,
                            timeout=timedelta(seconds=60))
    gc.disable()  # only close_processes may collect the cycle
    try:
        cycle = {'group': dist.group.WORLD}
        cycle['self'] = cycle
        held = weakref.ref(dist.group.WORLD)
        del cycle
        close_processes()
        assert not dist.is_initialized()
        assert held() is None
    finally:
        gc.enable()
        if dist.is_initialized():
            dist.destroy_process_group()
