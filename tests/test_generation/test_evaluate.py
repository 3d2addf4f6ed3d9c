"""tools/eval_generation.py and fqzoo.generation.evaluate."""
import json
import runpy
import sys

import numpy as np
import pytest
from conftest import REPO

from fqzoo.generation.evaluate import evaluate_samples


def _write(path, num, seed, labels=True):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (num, 1, 1, 3), dtype=np.uint8)
    images = np.repeat(np.repeat(images, 16, 1), 16, 2)
    arrays = [images] + ([np.arange(num) % 2] if labels else [])
    np.savez(path, *arrays)
    return path


def test_evaluate_needs_what_it_measures(tmp_path):
    samples = _write(tmp_path / 's.npz', 4, 0, labels=False)
    with pytest.raises(ValueError, match='--ref'):
        evaluate_samples(samples, metrics=['fid'])
    with pytest.raises(ValueError, match='no labels'):
        evaluate_samples(samples, metrics=[], fmnist_classifier=True)
    result = evaluate_samples(samples, metrics=[])
    assert result['metrics'] == {} and result['samples']['count'] == 4


def test_eval_generation_tool(tmp_path, monkeypatch, capsys):
    """The tool's own code, in this process (its imports are loaded)."""
    samples = _write(tmp_path / 'samples.npz', 6, 0)
    ref = _write(tmp_path / 'ref.npz', 6, 0)
    monkeypatch.setattr(sys, 'argv', [
        'eval_generation.py', str(samples), '--ref', str(ref), '--metrics',
        '--offline-fid', '--device', 'cpu'])
    runpy.run_path(str(REPO / 'tools' / 'eval_generation.py'),
                   run_name='__main__')
    result = json.loads((tmp_path / 'metrics.json').read_text())
    assert str(tmp_path / 'metrics.json') in capsys.readouterr().out
    assert set(result['metrics']) == {'fid_effnet_offline'}
    assert abs(result['metrics']['fid_effnet_offline']) < 1e-2
    assert 'never with published FID' in \
        result['comparable']['fid_effnet_offline']
    assert result['reference'] == dict(ref=str(ref), count=6,
                                       shape=[16, 16, 3])
