"""Atomic checkpoints: commit_file, AtomicCheckpointHook, resuming from the
newest complete checkpoint, and training killed with SIGKILL at random
points (one inside a save) that resumes to bit-identical weights."""
import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO, run_tool, tool_env, write_tiny_config
from mmengine.config import Config

from fqzoo.engine.hooks import AtomicCheckpointHook
from fqzoo.engine.runner import build_runner
from fqzoo.utils import checkpoint as ckpt_utils
from fqzoo.utils.checkpoint import find_resumable_checkpoint

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def restore_torch_determinism():
    """The tiny config switches torch to deterministic algorithms."""
    enabled = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(enabled)


def tiny_runner(tmp_path: Path, name: str, **kwargs):
    config = tmp_path / f'{tmp_path.name}_{name}.py'
    cfg = Config.fromfile(write_tiny_config(config, tmp_path / 'work',
                                            **kwargs))
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    return build_runner(cfg)


def _save(path: Path, mtime: int, value: float = 0.0) -> Path:
    torch.save(dict(meta=dict(iter=1), state_dict=dict(w=torch.tensor(value))),
               path)
    os.utime(path, ns=(mtime, mtime))
    return path


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    """iter_2 (complete, older), iter_4 (complete, newer), a stale
    temporary file and last_checkpoint naming iter_4."""
    _save(tmp_path / 'iter_2.pth', 10**18)
    _save(tmp_path / 'iter_4.pth', 10**18 + 10**9)
    (tmp_path / '.iter_6.pth.tmp').write_bytes(b'PK\x03\x04partial')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    return tmp_path


def test_resumable_is_last_checkpoint_when_complete(work_dir, caplog):
    with caplog.at_level(logging.WARNING):
        assert find_resumable_checkpoint(work_dir) == str(
            work_dir / 'iter_4.pth')
    assert caplog.records == []


@pytest.mark.parametrize('damage', ['truncated', 'missing', 'empty'])
def test_resumable_skips_bad_last_checkpoint(work_dir, caplog, damage):
    newest = work_dir / 'iter_4.pth'
    if damage == 'truncated':
        _truncate(newest)
    elif damage == 'missing':
        newest.unlink()
    else:
        newest.write_bytes(b'')
    with caplog.at_level(logging.WARNING):
        found = find_resumable_checkpoint(work_dir)
    assert found == str(work_dir / 'iter_2.pth')
    assert str(newest) in caplog.text and damage in caplog.text


def test_resumable_prefers_newer_complete_checkpoint(work_dir, caplog):
    """Killed between the rename and the last_checkpoint update."""
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'iter_2.pth'))
    with caplog.at_level(logging.WARNING):
        assert find_resumable_checkpoint(work_dir) == str(
            work_dir / 'iter_4.pth')
    assert 'newest complete' in caplog.text


def test_resumable_without_pointer_and_without_checkpoints(work_dir):
    (work_dir / 'last_checkpoint').unlink()
    _truncate(work_dir / 'iter_4.pth')
    assert find_resumable_checkpoint(work_dir) == str(work_dir / 'iter_2.pth')
    (work_dir / 'iter_2.pth').unlink()
    assert find_resumable_checkpoint(work_dir) is None


def test_incomplete_reason_detects_a_flipped_byte(tmp_path):
    path = _save(tmp_path / 'iter_1.pth', 10**18, value=1234.5)
    assert ckpt_utils.incomplete_reason(path) is None
    data = bytearray(path.read_bytes())
    data[data.index(torch.tensor(1234.5).numpy().tobytes())] ^= 0xFF
    path.write_bytes(bytes(data))
    assert ckpt_utils.incomplete_reason(path) is not None


def test_write_text_atomic_replaces_whole_text(tmp_path):
    path = tmp_path / 'last_checkpoint'
    ckpt_utils.write_text_atomic(path, 'old')
    ckpt_utils.write_text_atomic(path, 'new')
    assert path.read_text() == 'new'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['last_checkpoint']


def test_crash_inside_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    """A save that dies between writing and renaming leaves the previous
    checkpoint and last_checkpoint as they were, and resume=True resumes
    from the previous checkpoint."""
    runner = tiny_runner(tmp_path, 'crash', max_iters=4,
                         checkpoint_interval=2)
    assert any(isinstance(h, AtomicCheckpointHook) for h in runner.hooks)
    commit = ckpt_utils.commit_file

    def die_at_iter_4(tmp, path):
        if Path(path).name == 'iter_4.pth':
            raise KeyboardInterrupt('killed inside the save')
        commit(tmp, path)

    monkeypatch.setattr(ckpt_utils, 'commit_file', die_at_iter_4)
    with pytest.raises(KeyboardInterrupt):
        runner.train()
    work = tmp_path / 'work'
    assert (work / '.iter_4.pth.tmp').is_file()
    assert not (work / 'iter_4.pth').exists()
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_2.pth')
    monkeypatch.setattr(ckpt_utils, 'commit_file', commit)
    resumed = tiny_runner(tmp_path, 'resumed', max_iters=4,
                          extra='resume = True')
    resumed.load_or_resume()
    assert resumed.iter == 2


def test_old_checkpoints_deleted_only_after_the_new_one(tmp_path,
                                                        monkeypatch):
    runner = tiny_runner(
        tmp_path, 'keep', max_iters=6, checkpoint_interval=2,
        extra="default_hooks = dict(checkpoint=dict(type='CheckpointHook', "
              "interval=2, by_epoch=False, max_keep_ckpts=1))")
    work = tmp_path / 'work'
    seen = {}
    commit = ckpt_utils.commit_file

    def record(tmp, path):
        seen[Path(path).name] = sorted(p.name for p in work.glob('iter_*'))
        commit(tmp, path)

    monkeypatch.setattr(ckpt_utils, 'commit_file', record)
    runner.train()
    seen.pop('last_checkpoint')
    assert seen == {'iter_2.pth': [], 'iter_4.pth': ['iter_2.pth'],
                    'iter_6.pth': ['iter_4.pth']}
    assert sorted(p.name for p in work.glob('iter_*')) == ['iter_6.pth']
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_6.pth')


def _wait_for(predicate, proc: subprocess.Popen, what: str,
              timeout: float = 300) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f'training ended before {what}:\n'
                                 f'{proc.stdout.read()[-3000:]}')
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError(f'timed out waiting for {what}')
        time.sleep(0.02)


def _step(path: Path) -> int:
    """N of ``iter_N.pth``."""
    return int(path.stem.split('_')[1])


def _read(path: Path) -> str:
    """The text of a file that may vanish meanwhile ('' then)."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return ''


def _start(config: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, 'tools/train.py', str(config), '--resume'],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)


def _kill(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return out


def _states_equal(a: dict, b: dict) -> None:
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for key, value in a['state_dict'].items():
        assert torch.equal(value, b['state_dict'][key]), key
    assert a['optimizer'].keys() == b['optimizer'].keys()
    for name in a['optimizer']:
        sa, sb = a['optimizer'][name]['state'], b['optimizer'][name]['state']
        assert sa.keys() == sb.keys() and len(sa) > 0
        for idx in sa:
            assert sa[idx].keys() == sb[idx].keys()
            for field, value in sa[idx].items():
                assert torch.equal(torch.as_tensor(value),
                                   torch.as_tensor(sb[idx][field])), (
                    name, idx, field)
    assert a['param_schedulers'] == b['param_schedulers']
    assert a['meta']['iter'] == b['meta']['iter']


@pytest.mark.slow
def test_sigkill_at_random_points_resumes_bit_exact(tmp_path):
    """8 iterations straight == 8 iterations with SIGKILLs: one inside
    the save of iter_4 (after the temporary file, before the rename), one
    at a random moment, then a torn newest checkpoint; each time
    ``--resume`` continues from the newest complete checkpoint."""
    rng = random.Random(os.getpid())
    kw = dict(max_iters=8, checkpoint_interval=2)
    straight = write_tiny_config(tmp_path / 'a.py', tmp_path / 'a', **kw)
    run_tool(['tools/train.py', str(straight)], timeout=600)

    work = tmp_path / 'b'
    config = write_tiny_config(
        tmp_path / 'b.py', work, **kw,
        extra="custom_imports = dict(imports=['conftest', "
              "'slow_save_plugin'], allow_failed_imports=False)")
    env = tool_env()
    env['PYTHONPATH'] = os.pathsep.join([str(HERE), env['PYTHONPATH']])
    env['FQZOO_TEST_SAVE_DELAY'] = '0.4'
    marker = work / '.saving'

    proc = _start(config, env)
    _wait_for(lambda: _read(marker) == 'iter_4.pth', proc,
              'the save of iter_4')
    _kill(proc)
    assert (work / '.iter_4.pth.tmp').is_file()
    assert not (work / 'iter_4.pth').exists()
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_2.pth')

    proc = _start(config, env)
    _wait_for(lambda: (work / 'iter_4.pth').is_file(), proc,
              'the iter_4 checkpoint')
    delay = rng.uniform(0.0, 0.8)
    time.sleep(delay)
    out = _kill(proc)
    assert 'resumed epoch: 0, iter: 2' in out
    # the newest checkpoint; last_checkpoint names it too, unless the kill
    # fell between its rename and the rewrite of last_checkpoint
    newest = max(work.glob('iter_*.pth'), key=_step)
    step = _step(newest)
    pointer = Path((work / 'last_checkpoint').read_text())
    assert pointer in (newest, work / f'iter_{step - 2}.pth'), delay
    assert ckpt_utils.incomplete_reason(newest) is None, delay
    _truncate(newest)

    proc = run_tool(['tools/train.py', str(config), '--resume'], env=env,
                    timeout=600)
    out = proc.stdout + proc.stderr
    assert (f'{newest}, which is truncated' if pointer == newest
            else f'Skipping {newest}: truncated') in out
    assert f'resumed epoch: 0, iter: {step - 2}' in out
    _states_equal(torch.load(tmp_path / 'a' / 'iter_8.pth',
                             weights_only=True),
                  torch.load(work / 'iter_8.pth', weights_only=True))
