"""tools/benchmarks/gpu.py: the table it writes, and a --tiny run on the CPU
with a row per measurement and finite numbers (the released code is not in
the suite: the table then has fqzoo's columns only and says so)."""
import importlib.util
import math
import sys

import pytest
from conftest import REPO

GPU = REPO / 'tools' / 'benchmarks' / 'gpu.py'


@pytest.fixture(scope='module')
def gpu():
    spec = importlib.util.spec_from_file_location('gpu_benchmark', GPU)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop('gpu_benchmark', None)


def parse(table: str) -> tuple:
    """Header and rows (cells) of a markdown table."""
    lines = [line for line in table.splitlines() if line.startswith('|')]

    def cells(line):
        return [c.strip() for c in line.strip().strip('|').split('|')]
    assert set(lines[1]) <= set('|-')
    return cells(lines[0]), [cells(line) for line in lines[2:]]


def test_table_speed_up_is_fqzoo_over_released(gpu):
    step, rate, gone = (gpu.Row('step', 'ms/step'),
                        gpu.Row('rate', 'images/s'), gpu.Row('gone', 'ms/step'))
    step.fqzoo, step.released = (100.0, 2048.0), (250.0, 4096.5)
    rate.fqzoo, rate.released = (30.0, None), (10.0, None)
    rate.notes = ['same tokens', 'batch 64']
    gone.skipped = 'skipped (time budget 480 s)'
    header, rows = parse(gpu.table([step, rate, gone], with_released=True))
    assert header == ['measurement', 'unit', 'fqzoo', 'fqzoo peak MiB',
                      'released', 'released peak MiB', 'fqzoo speed-up',
                      'notes']
    # lower is better for a step time, higher for a rate
    assert rows[0] == ['step', 'ms/step', '100', '2048', '250', '4096',
                       '2.50x', '']
    assert rows[1] == ['rate', 'images/s', '30', '-', '10', '-', '3.00x',
                       'same tokens; batch 64']
    assert rows[2] == ['gone', 'ms/step', '-', '-', '-', '-', '-',
                       'skipped (time budget 480 s)']
    header, rows = parse(gpu.table([step], with_released=False))
    assert header == ['measurement', 'unit', 'fqzoo', 'fqzoo peak MiB',
                      'notes']
    assert rows[0] == ['step', 'ms/step', '100', '2048', '']


def test_measure_times_the_calls_after_warmup(gpu):
    calls = []
    seconds, peak = gpu.measure(lambda: calls.append(1), warmup=2,
                                repeats=3, device=gpu.torch.device('cpu'))
    assert len(calls) == 5 and 0 <= seconds < 1 and peak is None


@pytest.mark.slow
def test_tiny_run_prints_a_row_per_measurement(gpu, tmp_path, capsys):
    """The tool's main() in this process (the module the fixture loaded):
    the same table a ``python tools/benchmarks/gpu.py --tiny`` process
    prints, without a second torch/mmengine/fqzoo start-up."""
    out = tmp_path / 'gpu.md'
    gpu.main(['--tiny', '--device', 'cpu', '--out', str(out)])
    text = out.read_text()
    assert text in capsys.readouterr().out
    assert 'Released code not given (--released-fqgan, --released-llamagen)' \
        ': fqzoo columns only.' in text
    header, rows = parse(text)
    assert header == ['measurement', 'unit', 'fqzoo', 'fqzoo peak MiB',
                      'notes']
    assert [row[0] for row in rows] == list(gpu.MEASUREMENTS)
    for name, unit, value, peak, notes in rows:
        assert unit == ('images/s' if 'sampling' in name
                        or 'extraction' in name else 'ms/step')
        assert math.isfinite(float(value)) and float(value) > 0, name
        assert peak == '-'                      # no GPU memory on the CPU
        assert 'batch' in notes
    assert 'backend eager' in rows[-1][-1]
