"""Checkpoint, file, config and image helpers that mutation testing showed
no in-process test pinned down (fqzoo.utils.checkpoint, .files, .config,
.images; docs/testing.md lists the mutants these tests kill).

References are worked by hand: safetensors headers written byte by byte,
the exact messages the docstrings promise, SHA-256 test vectors from
FIPS 180-2, uint8 values of ``round((x + 1) * 127.5)``.
"""
import argparse
import json
import logging
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from safetensors.torch import save_file
from torch import nn

from fqzoo.errors import (
    InputError,
    InputFileNotFoundError,
    InputKeyError,
    input_error_message,
)
from fqzoo.utils import checkpoint as ckpt
from fqzoo.utils import files
from fqzoo.utils.checkpoint import (
    UnsafeCheckpointError,
    commit_file,
    extract_state_dict,
    find_resumable_checkpoint,
    incomplete_reason,
    is_safetensors,
    load_model_weights,
    load_safetensors,
    load_state_dict_checked,
    restore_message_hub_state,
    safe_load,
    safetensors_metadata,
    write_text_atomic,
)
from fqzoo.utils.config import load_config
from fqzoo.utils.images import to_uint8

LOGGER = 'fqzoo.utils.checkpoint'


def header_file(path, length: int, rest: bytes) -> Path:
    """A file of an 8-byte little-endian ``length`` and then ``rest``."""
    path.write_bytes(struct.pack('<Q', length) + rest)
    return path


# is_safetensors ----------------------------------------------------------


def test_a_safetensors_file_is_known_by_its_header_under_any_name(tmp_path):
    path = tmp_path / 'model.bin'
    save_file({'w': torch.arange(3.)}, path)
    assert is_safetensors(path)
    assert is_safetensors(str(path))


def test_the_safetensors_suffix_alone_makes_a_safetensors_file(tmp_path):
    empty = tmp_path / 'model.safetensors'
    empty.write_bytes(b'')
    assert is_safetensors(empty)


def test_a_torch_checkpoint_is_not_a_safetensors_file(tmp_path):
    path = tmp_path / 'model.pth'
    torch.save({'w': torch.ones(2)}, path)
    assert not is_safetensors(path)


def test_files_shorter_than_a_header_are_not_safetensors(tmp_path):
    for size in (0, 3, 8):
        path = tmp_path / f'short{size}.bin'
        path.write_bytes(b'\x01' * size)
        assert not is_safetensors(path)


def test_the_ninth_byte_must_open_the_json_header(tmp_path):
    # length 1 fits the 10-byte file, but byte 9 is not '{'
    assert not is_safetensors(header_file(tmp_path / 'a.bin', 1, b'xx'))
    # '{' at byte 9 and a header that fits: a safetensors start
    assert is_safetensors(header_file(tmp_path / 'b.bin', 1, b'{x'))


def test_the_header_must_fit_the_file(tmp_path):
    # 8 + 2 == 10 bytes: fits exactly
    assert is_safetensors(header_file(tmp_path / 'a.bin', 2, b'{}'))
    # 8 + 3 > 10 bytes: a truncated file
    assert not is_safetensors(header_file(tmp_path / 'b.bin', 3, b'{}'))
    # a length with the top bit set is huge (unsigned), not negative
    assert not is_safetensors(
        header_file(tmp_path / 'c.bin', 2 ** 64 - 1, b'{}'))
    assert not is_safetensors(
        header_file(tmp_path / 'd.bin', 2 ** 40, b'{}'))


# load_safetensors / safetensors_metadata ---------------------------------


@pytest.fixture
def tensors_file(tmp_path):
    path = tmp_path / 'weights.safetensors'
    save_file({'w': torch.tensor([1.5, -2.0])}, path,
              metadata={'format': 'pt', 'note': 'x'})
    return path


@pytest.fixture
def devices_asked(monkeypatch):
    """The ``device`` each ``safetensors.torch.load_file`` call asks for
    (loading onto the CPU whatever it is, as this machine may have no
    GPU)."""
    import safetensors.torch
    real = safetensors.torch.load_file
    asked = []

    def load_file(filename, device='cpu'):
        asked.append(device)
        return real(filename, device='cpu')

    monkeypatch.setattr(safetensors.torch, 'load_file', load_file)
    return asked


def test_safetensors_load_onto_the_cpu_by_default(tensors_file):
    loaded = load_safetensors(tensors_file)
    assert loaded['w'].tolist() == [1.5, -2.0]
    assert loaded['w'].device.type == 'cpu'
    assert safe_load(tensors_file)['w'].tolist() == [1.5, -2.0]


def test_safetensors_load_onto_the_map_location(tensors_file,
                                                devices_asked):
    assert load_safetensors(tensors_file)['w'].tolist() == [1.5, -2.0]
    load_safetensors(tensors_file, 'cuda:1')
    load_safetensors(tensors_file, torch.device('cuda', 0))
    load_safetensors(tensors_file, lambda storage, loc: storage)
    load_safetensors(tensors_file, {'cuda:0': 'cpu'})
    safe_load(tensors_file, map_location='cuda:1')
    safe_load(tensors_file)
    assert devices_asked == ['cpu', 'cuda:1', 'cuda:0', 'cpu', 'cpu',
                             'cuda:1', 'cpu']


def test_a_truncated_safetensors_file_is_named(tensors_file):
    data = tensors_file.read_bytes()
    tensors_file.write_bytes(data[:len(data) - 3])
    for load in (load_safetensors, safetensors_metadata, safe_load):
        with pytest.raises(InputError) as err:
            load(tensors_file)
        message = str(err.value)
        assert message.startswith(
            f'{tensors_file} is not a safetensors file (truncated or '
            'another format?): '), message
        assert len(message) > len(f'{tensors_file} is not a safetensors '
                                  'file (truncated or another format?): ')


def test_safetensors_metadata_reads_the_header_strings(tensors_file):
    assert safetensors_metadata(tensors_file) == {'format': 'pt',
                                                  'note': 'x'}


# safe_load ---------------------------------------------------------------


def test_missing_checkpoint_is_named(tmp_path):
    path = tmp_path / 'nope.pth'
    with pytest.raises(InputFileNotFoundError) as err:
        safe_load(path)
    assert input_error_message(err.value) == f'Checkpoint not found: {path}'


def test_safe_load_maps_to_the_map_location(tmp_path):
    path = tmp_path / 'a.pth'
    torch.save({'w': torch.tensor([3.0, 4.0])}, path)
    assert safe_load(str(path))['w'].tolist() == [3.0, 4.0]
    assert safe_load(path, map_location='meta')['w'].device.type == 'meta'
    assert safe_load(path, 'meta')['w'].shape == (2,)


def test_safe_load_reads_legacy_pickle_checkpoints(tmp_path):
    path = tmp_path / 'legacy.pth'
    torch.save({'w': torch.tensor([5.0, 6.0]), 'step': 9}, path,
               _use_new_zipfile_serialization=False)
    assert path.read_bytes()[:1] == b'\x80'
    loaded = safe_load(path)
    assert loaded['step'] == 9 and loaded['w'].tolist() == [5.0, 6.0]


def test_a_file_neither_zip_nor_pickle_is_refused_before_torch(
        tmp_path, monkeypatch):
    path = tmp_path / 'notes.pth'
    path.write_text('hello, not a checkpoint')

    def no_torch_load(*args, **kwargs):
        raise AssertionError('torch.load must not see this file')

    monkeypatch.setattr(torch, 'load', no_torch_load)
    with pytest.raises(InputError) as err:
        safe_load(path)
    assert str(err.value) == (
        f'{path} is not a PyTorch checkpoint: neither a torch.save zip '
        'archive (truncated or empty?) nor a legacy pickle')


def test_allowed_globals_are_unpickled(tmp_path):
    path = tmp_path / 'args.pth'
    torch.save({'args': argparse.Namespace(lr=0.5)}, path)
    with pytest.raises(UnsafeCheckpointError):
        safe_load(path)
    loaded = safe_load(path, allowed_globals=[argparse.Namespace])
    assert loaded['args'].lr == 0.5


def test_unsafe_refusal_message(unsafe_checkpoint):
    path, marker = unsafe_checkpoint
    with pytest.raises(UnsafeCheckpointError) as err:
        safe_load(path)
    message = str(err.value)
    assert message.startswith(
        f'Refusing to load {path}: it holds pickled objects other than '
        'tensors and plain Python values, which could run arbitrary code; '
        'fqzoo loads with weights_only=True (Unsupported global: GLOBAL '
        ), message
    # the payload's __reduce__ calls open: the global torch refuses
    assert message.endswith('GLOBAL io.open)'), message
    assert not marker.exists()


def test_weights_only_even_when_the_environment_turns_it_off(
        unsafe_checkpoint, monkeypatch):
    # torch.load(weights_only=None) obeys this variable; fqzoo never does
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    path, marker = unsafe_checkpoint
    with pytest.raises(UnsafeCheckpointError):
        safe_load(path)
    assert not marker.exists()


def test_other_unpickling_errors_are_not_called_unsafe(tmp_path,
                                                       monkeypatch):
    path = tmp_path / 'a.pth'
    torch.save({'w': torch.ones(1)}, path)

    def broken(*args, **kwargs):
        raise pickle.UnpicklingError('pickle data was truncated')

    monkeypatch.setattr(torch, 'load', broken)
    with pytest.raises(InputError) as err:
        safe_load(path)
    assert not isinstance(err.value, UnsafeCheckpointError)
    assert str(err.value) == (
        f'{path} is not a PyTorch checkpoint (another format, truncated or '
        'empty): UnpicklingError: pickle data was truncated')


def test_refused_global_falls_back_to_the_last_line():
    assert ckpt._refused_global(
        'Weights only load failed.\n  first\n\n  middle  \n  last one \n\n'
    ) == 'last one'
    assert ckpt._refused_global('') == 'weights-only unpickling failed'
    assert ckpt._refused_global(' \n \n') == 'weights-only unpickling failed'


# extract_state_dict / load_model_weights / load_state_dict_checked -------


def test_extract_state_dict_of_each_layout():
    weights = {'w': torch.ones(1)}
    assert extract_state_dict(
        {'state_dict': weights, 'meta': {'iter': 1}}) is weights
    assert extract_state_dict({'model': weights, 'args': 3}) is weights
    assert extract_state_dict(weights) is weights


def test_extract_state_dict_refusal_message():
    with pytest.raises(InputKeyError) as err:
        extract_state_dict({'w': torch.ones(1), 'step': 3})
    assert input_error_message(err.value) == (
        'No model weights found: expected a "state_dict" or "model" '
        'entry, or a plain state dict')


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(2, 2)
        self.dec = nn.Linear(2, 1)


def pair_state(scale=1.0):
    return {'enc.weight': torch.full((2, 2), 1.0 * scale),
            'enc.bias': torch.full((2,), 2.0 * scale),
            'dec.weight': torch.full((1, 2), 3.0 * scale),
            'dec.bias': torch.full((1,), 4.0 * scale)}


def values(model):
    return {k: v.flatten().tolist() for k, v in model.state_dict().items()}


def test_load_model_weights_loads_the_values(tmp_path):
    path = tmp_path / 'pair.pth'
    state = {'module.' + k: v for k, v in pair_state(2.0).items()}
    torch.save({'state_dict': state, 'meta': {}}, path)
    model = Pair()
    load_model_weights(model, path)
    assert values(model) == {'enc.weight': [2.0] * 4, 'enc.bias': [4.0] * 2,
                             'dec.weight': [6.0] * 2, 'dec.bias': [8.0]}


def test_load_model_weights_is_strict_by_default(tmp_path):
    path = tmp_path / 'pair.pth'
    state = pair_state()
    del state['dec.bias']
    state['disc.weight'] = torch.ones(1)
    torch.save({'model': state}, path)
    with pytest.raises(InputKeyError) as err:
        load_model_weights(Pair(), path)
    assert input_error_message(err.value) == (
        f"{path} does not match the model Pair (another architecture or "
        f"config?): 1 missing keys ['dec.bias'], 1 unexpected keys "
        f"['disc.weight'], 0 shape mismatches (file vs model) []")
    model = Pair()
    load_model_weights(model, path, strict=False)
    assert values(model)['dec.weight'] == [3.0, 3.0]


def test_load_model_weights_drops_the_ignored_prefixes(tmp_path):
    path = tmp_path / 'pair.pth'
    state = dict(pair_state(), **{'disc.weight': torch.ones(3)})
    torch.save(state, path)
    model = Pair()
    load_model_weights(model, path, ignore_prefixes=('disc.',))
    assert values(model)['enc.bias'] == [2.0, 2.0]


def test_load_state_dict_checked_is_strict_by_default():
    state = dict(pair_state(), extra=torch.ones(1))
    with pytest.raises(InputKeyError, match='1 unexpected keys'):
        load_state_dict_checked(Pair(), state, 'f.pth')


def test_only_missing_or_only_unexpected_keys_are_refused_when_strict():
    state = pair_state()
    del state['enc.bias']
    with pytest.raises(InputKeyError, match=r"1 missing keys \['enc.bias'\]"):
        load_state_dict_checked(Pair(), state, 'f.pth', strict=True)
    state = dict(pair_state(), extra=torch.ones(1))
    with pytest.raises(InputKeyError, match=r"unexpected keys \['extra'\]"):
        load_state_dict_checked(Pair(), state, 'f.pth', strict=True)


def test_not_strict_loads_what_fits_and_keeps_the_rest():
    model = Pair()
    before = values(model)['dec.bias']
    state = pair_state(3.0)
    del state['dec.bias']
    state['extra'] = torch.ones(5)
    load_state_dict_checked(model, state, 'f.pth', strict=False)
    assert values(model)['enc.weight'] == [3.0] * 4
    assert values(model)['dec.bias'] == before


def test_module_prefixes_are_stripped():
    model = Pair()
    state = {'module.' + k: v for k, v in pair_state(5.0).items()}
    load_state_dict_checked(model, state, 'f.pth')
    assert values(model)['dec.bias'] == [20.0]


def test_shape_mismatches_are_refused_even_when_not_strict():
    state = pair_state()
    state['enc.weight'] = torch.ones(3, 2)
    with pytest.raises(InputKeyError) as err:
        load_state_dict_checked(Pair(), state, 'f.pth', strict=False)
    assert input_error_message(err.value) == (
        "f.pth does not match the model Pair (another architecture or "
        "config?): 0 missing keys [], 0 unexpected keys [], 1 shape "
        "mismatches (file vs model) ['enc.weight [3, 2] vs [2, 2]']")


class Many(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.p = nn.ParameterList(nn.Parameter(torch.ones(1))
                                  for _ in range(n))


def test_long_key_lists_show_ten_and_count_the_rest():
    with pytest.raises(InputKeyError) as err:
        load_state_dict_checked(Many(12), {}, 'f.pth')
    first = [f'p.{i}' for i in range(10)]
    assert input_error_message(err.value) == (
        'f.pth does not match the model Many (another architecture or '
        f'config?): 12 missing keys {first} and 2 more, 0 unexpected keys '
        '[], 0 shape mismatches (file vs model) []')
    with pytest.raises(InputKeyError) as err:
        load_state_dict_checked(Many(10), {}, 'f.pth')
    assert f'10 missing keys {first}, 0 unexpected' in (
        input_error_message(err.value))


# restore_message_hub_state -----------------------------------------------


def test_restore_keeps_history_buffers_and_their_max_length():
    kept = HistoryBuffer(np.array([1.0]), np.array([1]), 5)
    state = {'log_scalars': {
        'kept': kept,
        'plain': dict(log_history=[1.0, 2.0, 6.0], count_history=[1, 1, 2],
                      max_length=3)},
        'runtime_info': {'iter': 4}, 'resumed_keys': {}}
    restored = restore_message_hub_state(state)
    assert restored['log_scalars']['kept'] is kept
    buf = restored['log_scalars']['plain']
    assert buf.max_length == 3
    assert buf.data[0].tolist() == [1.0, 2.0, 6.0]
    assert buf.mean() == 9.0 / 4
    assert restored['runtime_info'] == {'iter': 4}


# atomic writes -----------------------------------------------------------


def test_commit_file_renames_the_complete_file(tmp_path):
    tmp, path = tmp_path / '.a.tmp', tmp_path / 'a.txt'
    path.write_text('old')
    tmp.write_text('new text')
    commit_file(str(tmp), str(path))
    assert path.read_text() == 'new text' and not tmp.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.txt']


def test_fsync_dir_flushes_a_folder_and_skips_a_missing_one(tmp_path):
    assert ckpt._fsync_dir(tmp_path) is None
    assert ckpt._fsync_dir(str(tmp_path)) is None
    assert ckpt._fsync_dir(tmp_path / 'absent') is None


def test_write_text_atomic_replaces_the_text(tmp_path):
    path = tmp_path / 'last_checkpoint'
    path.write_text('old one, longer than the new')
    write_text_atomic(str(path), 'iter_4.pth')
    assert path.read_text() == 'iter_4.pth'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['last_checkpoint']


def test_write_text_atomic_crash_leaves_old_text_and_hidden_temporary(
        tmp_path, monkeypatch):
    path = tmp_path / 'last_checkpoint'
    path.write_text('iter_2.pth')

    def crash(*args):
        raise OSError('power cut')

    monkeypatch.setattr(os, 'replace', crash)
    with pytest.raises(OSError, match='power cut'):
        write_text_atomic(path, 'iter_4.pth')
    assert path.read_text() == 'iter_2.pth'
    tmp = tmp_path / '.last_checkpoint.tmp'
    assert tmp.read_text() == 'iter_4.pth'
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        '.last_checkpoint.tmp', 'last_checkpoint']


# incomplete_reason -------------------------------------------------------


def saved(path, value=1.0):
    torch.save({'w': torch.full((64,), value)}, path)
    return path


def test_incomplete_reason_of_each_kind_of_file(tmp_path):
    assert incomplete_reason(tmp_path / 'nope.pth') == 'missing'
    (tmp_path / 'empty.pth').write_bytes(b'')
    assert incomplete_reason(tmp_path / 'empty.pth') == 'empty'
    assert incomplete_reason(str(saved(tmp_path / 'ok.pth'))) is None
    legacy = tmp_path / 'legacy.pth'
    torch.save({'w': torch.ones(2)}, legacy,
               _use_new_zipfile_serialization=False)
    assert incomplete_reason(legacy) is None
    one = tmp_path / 'one.pth'
    one.write_bytes(b'P')
    assert incomplete_reason(one).startswith(
        'truncated or not a checkpoint (')
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(saved(tmp_path / 'full.pth').read_bytes()[:-40])
    reason = incomplete_reason(cut)
    assert reason.startswith('truncated or not a checkpoint (')
    assert reason.endswith(')') and len(reason) > 34


def test_a_member_failing_its_crc_is_named(tmp_path):
    path = saved(tmp_path / 'bad.pth', 7.0)
    with zipfile.ZipFile(path) as archive:
        member = next(i for i in archive.infolist()
                      if i.filename.endswith('/data/0'))
    data = bytearray(path.read_bytes())
    # the local header: 30 bytes, then its own name and extra field
    names, extra = struct.unpack_from('<HH', data, member.header_offset + 26)
    start = member.header_offset + 30 + names + extra
    # the raw float32 bytes of 7.0 are stored; flip one of them
    assert data[start:start + 4] == struct.pack('<f', 7.0)
    data[start + 3] ^= 0x01
    path.write_bytes(bytes(data))
    assert incomplete_reason(path) == f'corrupt member {member.filename}'


# _newest_first / find_resumable_checkpoint -------------------------------


def stamp(path, seconds):
    os.utime(path, ns=(seconds * 10 ** 9, seconds * 10 ** 9))
    return path


def test_newest_first_by_time_then_by_number(tmp_path):
    for n in range(1, 13):
        stamp(saved(tmp_path / f'iter_{n}.pth'), 1000)
    stamp(saved(tmp_path / 'epoch_3.pth'), 2000)
    stamp(saved(tmp_path / 'iter_99.pth'), 500)
    stamp(saved(tmp_path / 'best.pth'), 3000)
    (tmp_path / 'iter_50.pth').mkdir()
    stamp(saved(tmp_path / 'iter_0.pth'), 100)
    order = [p.name for p in ckpt._newest_first(tmp_path)]
    assert order == (['epoch_3.pth']
                     + [f'iter_{n}.pth' for n in range(12, 0, -1)]
                     + ['iter_99.pth', 'iter_0.pth'])


def test_extra_files_join_and_lose_ties_to_numbered_ones(tmp_path):
    folder = tmp_path / 'ckpts'
    folder.mkdir()
    stamp(saved(folder / 'iter_0.pth'), 1000)
    extra = stamp(saved(folder / 'final.pth'), 1000)
    stamp(saved(folder / 'iter_1.pth'), 900)
    order = ckpt._newest_first(folder, [extra, tmp_path / 'absent.pth'])
    assert [p.name for p in order] == ['iter_0.pth', 'final.pth',
                                       'iter_1.pth']
    assert ckpt._newest_first(tmp_path / 'absent', [extra]) == [extra]


def warnings_of(caplog):
    return [(r.name, r.getMessage()) for r in caplog.records
            if r.levelno == logging.WARNING]


def test_no_checkpoint_no_warning(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    assert find_resumable_checkpoint(tmp_path) is None
    assert warnings_of(caplog) == []


def test_newest_complete_checkpoint_without_pointer(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    stamp(saved(tmp_path / 'iter_2.pth'), 1000)
    stamp(saved(tmp_path / 'iter_4.pth'), 2000)
    stamp(saved(tmp_path / 'best.pth'), 3000)
    assert find_resumable_checkpoint(str(tmp_path)) == str(
        tmp_path / 'iter_4.pth')
    assert warnings_of(caplog) == []


def test_newer_incomplete_checkpoints_are_skipped_with_a_warning(
        tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    stamp(saved(tmp_path / 'iter_2.pth'), 1000)
    (tmp_path / 'iter_4.pth').write_bytes(b'')
    stamp(tmp_path / 'iter_4.pth', 2000)
    assert find_resumable_checkpoint(tmp_path) == str(
        tmp_path / 'iter_2.pth')
    assert warnings_of(caplog) == [
        (LOGGER, f'Skipping {tmp_path / "iter_4.pth"}: empty')]


def test_pointer_in_another_folder_is_followed(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    folder = tmp_path / 'ckpts'
    folder.mkdir()
    named = stamp(saved(folder / 'final.pth'), 2000)
    stamp(saved(folder / 'iter_1.pth'), 1000)
    stamp(saved(tmp_path / 'iter_9.pth'), 3000)
    (tmp_path / 'last_checkpoint').write_text(f'{named}\n')
    assert find_resumable_checkpoint(tmp_path) == str(named)
    assert warnings_of(caplog) == []


def test_incomplete_pointer_target_is_reported_once(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    stamp(saved(tmp_path / 'iter_2.pth'), 1000)
    named = tmp_path / 'iter_4.pth'
    named.write_bytes(b'PK')
    stamp(named, 2000)
    (tmp_path / 'last_checkpoint').write_text(str(named))
    assert find_resumable_checkpoint(tmp_path) == str(
        tmp_path / 'iter_2.pth')
    found = warnings_of(caplog)
    assert found[0][0] == LOGGER and found[0][1].startswith(
        f'last_checkpoint names {named}, which is truncated or not a '
        'checkpoint (')
    assert found[0][1].endswith('): not resuming from it')
    assert found[1:] == [(LOGGER, (
        f'Resuming from {tmp_path / "iter_2.pth"}, the newest complete '
        f'checkpoint (last_checkpoint names {named})'))]


def test_missing_pointer_target_and_newer_file(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    named = tmp_path / 'iter_2.pth'
    newer = stamp(saved(tmp_path / 'iter_3.pth'), 2000)
    (tmp_path / 'last_checkpoint').write_text(str(named))
    assert find_resumable_checkpoint(tmp_path) == str(newer)
    assert [m for _, m in warnings_of(caplog)] == [
        f'last_checkpoint names {named}, which is missing: not resuming '
        'from it',
        f'Resuming from {newer}, the newest complete checkpoint '
        f'(last_checkpoint names {named})']


def test_empty_pointer_falls_back_to_the_work_dir(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    stamp(saved(tmp_path / 'iter_2.pth'), 1000)
    pointer = tmp_path / 'last_checkpoint'
    pointer.write_text(' \n')
    assert find_resumable_checkpoint(tmp_path) == str(
        tmp_path / 'iter_2.pth')
    assert warnings_of(caplog) == [(LOGGER, (
        f'{pointer} is empty: looking for the newest complete checkpoint '
        f'in {tmp_path}'))]


def test_warnings_go_to_the_given_logger(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    (tmp_path / 'last_checkpoint').write_text('')
    logger = logging.getLogger('test_checkpoint_mutation_kills.resume')
    assert find_resumable_checkpoint(tmp_path, logger=logger) is None
    assert [name for name, _ in warnings_of(caplog)] == [logger.name]


# files -------------------------------------------------------------------


def test_write_json_atomic_writes_indented_json(tmp_path):
    path = tmp_path / 'manifest.json'
    path.write_text('{"old": true}')
    returned = files.write_json_atomic(str(path), {'a': 1, 'b': [2, 3]})
    assert returned == path and isinstance(returned, Path)
    assert path.read_text() == (
        '{\n  "a": 1,\n  "b": [\n    2,\n    3\n  ]\n}\n')
    assert json.loads(path.read_text()) == {'a': 1, 'b': [2, 3]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ['manifest.json']


class Sha256Spy:
    """hashlib's sha256 recording the size of each block given to it."""

    def __init__(self, real):
        self.real, self.blocks = real, []

    def __call__(self):
        spy, digest = self, self.real()

        class Digest:
            def update(self, block):
                spy.blocks.append(len(block))
                assert len(spy.blocks) < 100, 'never reached the end'
                digest.update(block)

            def hexdigest(self):
                return digest.hexdigest()

        return Digest()


def test_file_sha256_reads_the_file_in_chunks(tmp_path, monkeypatch):
    import hashlib
    spy = Sha256Spy(hashlib.sha256)
    monkeypatch.setattr(files.hashlib, 'sha256', spy)
    path = tmp_path / 'msg'
    path.write_bytes(b'abc')
    # FIPS 180-2 test vectors
    assert files.file_sha256(str(path)) == (
        'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
    assert spy.blocks == [3]
    spy.blocks.clear()
    monkeypatch.setattr(files, 'CHUNK', 4)
    path.write_bytes(
        b'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')
    assert files.file_sha256(path) == (
        '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1')
    assert spy.blocks == [4] * 14


# config ------------------------------------------------------------------


def test_load_config_merges_the_options(tmp_path):
    path = tmp_path / 'cfg.py'
    path.write_text('a = 1\nb = dict(c=2, d=3)\n')
    cfg = load_config(str(path))
    assert cfg.a == 1 and cfg.b.c == 2
    cfg = load_config(path, {'b.c': 5})
    assert (cfg.a, cfg.b.c, cfg.b.d) == (1, 5, 3)


def test_load_config_names_a_missing_file(tmp_path):
    path = tmp_path / 'nope.py'
    with pytest.raises(InputFileNotFoundError) as err:
        load_config(path)
    assert input_error_message(err.value) == f'Config file not found: {path}'


# images ------------------------------------------------------------------


def test_to_uint8_maps_minus_one_one_onto_0_255():
    images = torch.tensor([-1.5, -1.0, -0.5, 0.0, 0.2, 1.0, 1.5],
                          dtype=torch.float64)
    # round((x + 1) * 127.5): -63.75, 0, 63.75, 127.5 (to even), 153,
    # 255, 318.75, then clamped to [0, 255]
    out = to_uint8(images)
    assert out.dtype == torch.uint8
    assert out.tolist() == [0, 0, 64, 128, 153, 255, 255]
