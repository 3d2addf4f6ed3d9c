import pickle
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

from fqzoo.utils.checkpoint import (
    UnsafeCheckpointError,
    plain_message_hub_state,
    restore_message_hub_state,
    safe_load,
    to_plain,
)


def test_safe_load_refuses_pickled_code(unsafe_checkpoint):
    ckpt, marker = unsafe_checkpoint
    with pytest.raises(UnsafeCheckpointError, match='Refusing to load'):
        safe_load(ckpt)
    assert not marker.exists()


def test_safe_load_reads_tensors_and_plain_values(tmp_path):
    path = tmp_path / 'ok.pth'
    torch.save({'w': torch.ones(2), 'meta': {'iter': 3, 'name': 'x'}}, path)
    loaded = safe_load(path)
    assert loaded['meta'] == {'iter': 3, 'name': 'x'}
    assert torch.equal(loaded['w'], torch.ones(2))


def test_safe_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        safe_load(tmp_path / 'nope.pth')


def test_to_plain_converts_numpy():
    value = {'a': np.float64(1.5), 'b': [np.arange(3)], 'c': (np.int64(2),),
             't': torch.zeros(1)}
    plain = to_plain(value)
    assert plain['a'] == 1.5 and type(plain['a']) is float
    assert plain['b'] == [[0, 1, 2]] and plain['c'] == (2,)
    assert plain['t'] is value['t']


def test_message_hub_state_round_trip(tmp_path):
    hub = MessageHub.get_instance('test_message_hub_state_round_trip')
    for i in range(5):
        hub.update_scalar('train/loss', float(i), count=2)
    hub.update_info('eta', np.float64(12.5))
    hub.update_info('iter', 7)
    state = hub.state_dict()
    plain = plain_message_hub_state(state)
    torch.save(plain, tmp_path / 'hub.pth')
    loaded = torch.load(tmp_path / 'hub.pth', weights_only=True)
    restored = restore_message_hub_state(loaded)
    buf = restored['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert np.array_equal(buf.data[0], state['log_scalars']['train/loss'].data[0])
    assert buf.mean(2) == state['log_scalars']['train/loss'].mean(2)
    assert buf.max_length == state['log_scalars']['train/loss'].max_length
    other = MessageHub.get_instance('test_message_hub_state_round_trip_2')
    other.load_state_dict(restored)
    assert other.get_info('iter') == 7
    assert other.get_info('eta') == 12.5
    assert other.get_scalar('train/loss').current() == 4.0


def torch_save_with(path, data_pkl: bytes):
    """A ``torch.save`` zip archive whose pickle is ``data_pkl``."""
    torch.save({'w': torch.ones(2)}, path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(path, 'w') as archive:
        for name, data in members.items():
            archive.writestr(name, data_pkl if name.endswith('/data.pkl')
                             else data)
    return path


def plain_zip(path):
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('notes.txt', 'not a checkpoint')
    return path


# files that pass the zip / pickle sniffing but that torch.load cannot read,
# with the error torch raises
UNREADABLE = {
    'pickled list': (lambda p: p.write_bytes(pickle.dumps([1, 2], 2)),
                     'RuntimeError: Invalid magic number'),
    'zip of other files': (plain_zip, 'RuntimeError: .*notes.txt'),
    'one pickle byte': (lambda p: p.write_bytes(b'\x80'), 'IndexError'),
    'garbled archive pickle': (
        lambda p: torch_save_with(p, b'\x80\x02junk'), 'error: unpack'),
}


@pytest.mark.parametrize('name', sorted(UNREADABLE))
def test_safe_load_names_files_torch_cannot_read(tmp_path, name):
    write, cause = UNREADABLE[name]
    path = tmp_path / 'bad.pth'
    write(path)
    with pytest.raises(ValueError, match=r'bad\.pth is not a PyTorch '
                       rf'checkpoint \(another format, truncated or empty\):'
                       rf' {cause}'):
        safe_load(path)
    good = torch_save_with(tmp_path / 'good.pth', pickle.dumps(
        {'step': 3}, 2))
    assert safe_load(good) == {'step': 3}
