"""fqzoo.ablation.records and fqzoo.ablation.sample_eval in detail: the
result's defaults, scalars parsing at its edges, failure reasons, error
lines and their limits, ``sample_eval`` checking and the exact processes
``sample_and_evaluate`` starts (``run_process`` replaced by a fake), so a
changed value, message or boundary fails a test (mutation run)."""
import json
import math
import sys
from pathlib import Path

import pytest
from mmengine.config import Config

from fqzoo.ablation import records, sample_eval
from fqzoo.ablation.process import EVAL_TOOL, SAMPLE_TOOL
from fqzoo.ablation.records import (
    RESULT_FILE,
    RunResult,
    error_line,
    last_error_line,
    load_result,
    non_finite_loss,
    numeric,
    read_scalars,
)
from fqzoo.ablation.sample_eval import sample_and_evaluate, sample_eval_spec

# Two files that exist under the repository root, named relative to it.
CONFIG, CHECKPOINT = 'fqzoo/ablation/records.py', 'fqzoo/ablation/process.py'
ALL_KEYS = ("['batch_size', 'cfg_scale', 'eval_args', 'num', 'sample_args', "
            "'tokenizer']")


def _scalars(run_dir: Path, stamp: str, text: str) -> None:
    path = run_dir / stamp / 'vis_data' / 'scalars.json'
    path.parent.mkdir(parents=True)
    path.write_text(text)


def test_defaults_are_the_docstrings():
    result = RunResult(config='a/fq2.py', name='fq2', seed=3)
    assert result.__dict__ == dict(
        config='a/fq2.py', name='fq2', seed=3, status='failed', reason='',
        metrics={}, model='', codebook_sizes=[], bits_per_token=0.0, grid='',
        params=0, train_time_s=0.0, eval_time_s=0.0, max_iters=0, work_dir='',
        checkpoint='')
    assert result.ok is False
    assert RunResult('a.py', 'a', 0, status='ok').ok is True
    assert RunResult('a.py', 'a', 0, status='OK').ok is False
    assert RESULT_FILE == 'result.json'


def test_read_scalars_validation_before_training_is_iteration_zero(tmp_path):
    # Each file starts at iteration 0: a validation record before the
    # file's first training record gets 0; a blank line is skipped, not the
    # end of the file; a later record of one iteration replaces the earlier.
    _scalars(tmp_path, '20240101_000000', '\n'.join([
        json.dumps(dict(psnr=10.0, step=0)),
        '',
        '   ',
        json.dumps(dict(loss=1.0, iter=2, step=2)),
        json.dumps(dict(loss=0.5, iter=2, step=2, lr=0.1)),
        json.dumps(dict(psnr=12.0, step=1)),
        json.dumps(dict(psnr=13.0, step=2)),
        json.dumps(dict(loss=0.9, iter=1, step=1)),
    ]) + '\n')
    train, val = read_scalars(tmp_path)
    assert train == [dict(loss=0.9, iter=1, step=1),
                     dict(loss=0.5, iter=2, step=2, lr=0.1)]
    assert val == [dict(psnr=10.0, step=0, iter=0),
                   dict(psnr=13.0, step=2, iter=2)]


def test_read_scalars_reads_files_in_time_order(tmp_path):
    # The later file (by its timestamp folder) wins for a shared iteration,
    # whatever order the folders were made in; only the runs' scalars.json
    # files are read; a string iteration becomes a number for validation.
    _scalars(tmp_path, '20240102_000000', '\n'.join([
        json.dumps(dict(loss=0.3, iter=3, step=3)),
        json.dumps(dict(psnr=30.0, step=0))]))
    _scalars(tmp_path, '20240101_000000', '\n'.join([
        json.dumps(dict(loss=1.0, iter=3, step=3)),
        json.dumps(dict(loss=2.0, iter='4', step=4)),
        json.dumps(dict(psnr=20.0, step=0))]))
    (tmp_path / 'not_a_run').mkdir()
    (tmp_path / 'scalars.json').write_text(json.dumps(dict(loss=9, iter=9)))
    train, val = read_scalars(str(tmp_path))
    assert train == [dict(loss=0.3, iter=3, step=3),
                     dict(loss=2.0, iter='4', step=4)]
    assert val == [dict(psnr=30.0, step=0, iter=3),
                   dict(psnr=20.0, step=0, iter=4)]
    assert [type(r['iter']) for r in val] == [int, int]
    assert read_scalars(tmp_path / 'empty') == ([], [])


def test_read_scalars_resumed_validation_keeps_the_previous_iteration(
        tmp_path):
    _scalars(tmp_path, '20240101_000000', '\n'.join([
        json.dumps(dict(loss=1.0, iter=100, step=100))]))
    _scalars(tmp_path, '20240102_000000', '\n'.join([   # resumed at 100
        json.dumps(dict(psnr=30.0, step=0)),
        json.dumps(dict(loss=0.5, iter=150, step=150))]))
    assert read_scalars(tmp_path)[1] == [dict(psnr=30.0, step=0, iter=100)]


def test_non_finite_loss_names_key_value_and_iteration():
    finite = dict(loss=1.0, loss_g=2, iter=1)
    assert non_finite_loss([finite, dict(loss=3.0, iter=2)]) is None
    assert non_finite_loss([]) is None
    # Only keys naming a loss, only numbers: a NaN accuracy, a string or a
    # bool under a loss key are not a failure.
    assert non_finite_loss([dict(acc=math.nan, loss_name='nan',
                                 loss_flag=True, iter=4)]) is None
    assert non_finite_loss([finite, dict(loss=1.0, loss_g=-math.inf,
                                         iter=7)]) == \
        'non-finite loss_g (-inf) at iteration 7'
    assert non_finite_loss([dict(loss_d=math.inf, iter=2),
                            dict(loss=math.nan, iter=3)]) == \
        'non-finite loss_d (inf) at iteration 2'


def test_last_error_line_finds_each_kind_of_error_line(tmp_path):
    log = tmp_path / 'run.log'

    def last(*lines: str) -> str:
        log.write_text('\n'.join(lines) + '\n')
        return last_error_line(log)

    assert last('noise', 'ValueError: bad: 3', 'after') == 'ValueError: bad: 3'
    assert last('noise', 'MyException: x', 'after') == 'MyException: x'
    assert last('noise', 'KeyboardInterrupt', 'after') == 'KeyboardInterrupt'
    assert last('Traceback (most recent call last):', '  File "x.py"',
                'after') == 'Traceback (most recent call last):'
    assert last('OSError: first', 'noise', '  TypeError: second  ',
                'tail') == 'TypeError: second'
    # Nothing names an error: the last non-empty line, stripped.
    assert last('first', 'second', '  third  ', '', '   ') == 'third'
    assert last('an Error: inside', 'tail') == 'an Error: inside'
    assert last('Errors: counted', 'tail') == 'tail'


def test_last_error_line_limits_and_empty_logs(tmp_path):
    log = tmp_path / 'run.log'
    log.write_text('RuntimeError: ' + 'x' * 400 + '\nnoise\n')
    assert last_error_line(log) == ('RuntimeError: ' + 'x' * 400)[:300]
    log.write_text('y' * 400 + '\n')
    assert last_error_line(log) == 'y' * 300
    log.write_text('\n  \n')
    assert last_error_line(log) == ''
    assert last_error_line(tmp_path / 'missing.log') == ''
    assert last_error_line(tmp_path) == ''
    log.write_bytes(b'noise\nValueError: bad \xff byte\n')
    assert last_error_line(log) == 'ValueError: bad \ufffd byte'


def test_error_line_type_first_line_and_limit():
    assert error_line(ValueError('first\nsecond')) == 'ValueError: first'
    assert error_line(KeyError('missing')) == 'KeyError: missing'
    assert error_line(KeyError()) == 'KeyError: '
    assert error_line(ValueError('')) == 'ValueError: '
    assert error_line(OSError(2, 'gone')) == \
        'FileNotFoundError: [Errno 2] gone'
    long = error_line(RuntimeError('z' * 400))
    assert long == ('RuntimeError: ' + 'z' * 400)[:300]
    assert len(long) == 300
    assert error_line(RuntimeError('z' * 400), limit=20) == \
        'RuntimeError: zzzzzz'


def test_load_result_reads_result_json(tmp_path):
    assert load_result(tmp_path) is None
    (tmp_path / 'result.json').mkdir()
    assert load_result(tmp_path) is None
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    stored = dict(config='c.py', name='c', seed=1, status='ok',
                  metrics=dict(psnr=20.0), codebook_sizes=[16, 16])
    (run_dir / 'result.json').write_text(json.dumps(stored))
    assert load_result(str(run_dir)) == RunResult(**stored)


def test_numeric_keeps_numbers_only():
    metrics = dict(psnr=20.5, count=3, flag=True, per_class=dict(a=1.0),
                   name='x', none=None)
    assert numeric(metrics) == dict(psnr=20.5, count=3)
    assert numeric({}) == {}


def test_sample_eval_spec_completes_and_converts():
    spec = sample_eval_spec(Config(dict(sample_eval=dict(
        tokenizer=[CONFIG, CHECKPOINT], num='6', cfg_scale=[1, 3],
        batch_size='8', sample_args=['--seed', 3],
        eval_args=['--metrics', 2]))))
    assert spec == dict(tokenizer=[CONFIG, CHECKPOINT], num=6,
                        cfg_scale=[1.0, 3.0], batch_size=8,
                        sample_args=['--seed', '3'],
                        eval_args=['--metrics', '2'])
    assert [type(s) for s in spec['cfg_scale']] == [float, float]
    assert (type(spec['num']), type(spec['batch_size'])) == (int, int)
    absolute = str(Path(records.__file__))
    spec = sample_eval_spec(dict(sample_eval=dict(
        tokenizer=(Path(absolute), CHECKPOINT), num=2, cfg_scale=(2, 4.5),
        sample_args=None)))
    assert spec == dict(tokenizer=[absolute, CHECKPOINT], num=2,
                        cfg_scale=[2.0, 4.5], batch_size=32, sample_args=[],
                        eval_args=[])


def test_sample_eval_spec_default_scale_is_one():
    spec = sample_eval_spec(dict(sample_eval=dict(
        tokenizer=(CONFIG, CHECKPOINT), num=4)))
    assert spec['cfg_scale'] == [1.0]
    assert spec['batch_size'] == 32
    assert sample_eval_spec(dict()) is None
    assert sample_eval_spec(dict(sample_eval={})) is None
    assert sample_eval_spec(dict(sample_eval=None, other=1)) is None


def test_sample_eval_spec_errors_name_the_key_or_file():
    with pytest.raises(ValueError) as err:
        sample_eval_spec(dict(sample_eval=dict(
            tokenizer=(CONFIG, CHECKPOINT), num=4, scale=3, batch=2)))
    assert str(err.value) == \
        f"sample_eval: unknown keys ['batch', 'scale'], known: {ALL_KEYS}"
    with pytest.raises(ValueError) as err:
        sample_eval_spec(dict(sample_eval=dict(
            tokenizer=(CONFIG, CHECKPOINT, CONFIG), num=4)))
    assert str(err.value) == (
        "sample_eval: tokenizer must be (config, checkpoint), got "
        f"({CONFIG!r}, {CHECKPOINT!r}, {CONFIG!r})")
    with pytest.raises(ValueError, match=r'got \(.*records.py.,\)$'):
        sample_eval_spec(dict(sample_eval=dict(tokenizer=(CONFIG,), num=4)))
    with pytest.raises(FileNotFoundError) as err:
        sample_eval_spec(dict(sample_eval=dict(
            tokenizer=(CONFIG, 'missing.pth'), num=4)))
    assert str(err.value) == 'sample_eval: missing.pth not found'
    with pytest.raises(FileNotFoundError) as err:
        sample_eval_spec(dict(sample_eval=dict(
            tokenizer=('fqzoo/ablation', CHECKPOINT), num=4)))
    assert str(err.value) == 'sample_eval: fqzoo/ablation not found'


class FakeProcesses:
    """Stands for ``run_process``: records each call and plays the tools'
    part (``sampling.json``, ``metrics.json``, a log line) as told."""

    def __init__(self, codes=(), write_metrics=True, log_line=''):
        self.calls, self.codes = [], list(codes)
        self.write_metrics, self.log_line = write_metrics, log_line

    def __call__(self, args, log_file, env):
        self.calls.append((list(args), log_file, env))
        code = self.codes.pop(0) if self.codes else 0
        if self.log_line:
            log_file.write_text(f'noise\n{self.log_line}\nmore noise\n')
        out = Path(args[args.index('--out') + 1])
        if args[1] == str(SAMPLE_TOOL):
            out.mkdir()
            scale = float(args[args.index('--cfg-scale') + 1])
            (out / 'sampling.json').write_text(json.dumps(dict(timings=dict(
                images_per_s=10 * scale, tokens_per_s=100 * scale,
                total_s=5.0), num=6)))
        elif self.write_metrics:
            out.write_text(json.dumps(dict(metrics=dict(
                fid=9.5, accuracy=0.75, per_class=dict(a=0.5), ok=True))))
        return code, 0.25 if args[1] == str(SAMPLE_TOOL) else 0.5


def _run(tmp_path, monkeypatch, fake, **spec):
    monkeypatch.setattr(sample_eval, 'run_process', fake)
    spec = dict(dict(tokenizer=['tok.py', 'tok.pth'], num=6,
                     cfg_scale=[1.0, 3.0], batch_size=8,
                     sample_args=['--seed', '1'], eval_args=[]), **spec)
    result = RunResult('gen.py', 'gen', 0, checkpoint='ckpt.pth',
                       eval_time_s=1.0, metrics=dict(nll=2.0))
    env = dict(PATH='/bin')
    reason = sample_and_evaluate(result, tmp_path, Path('cfg/gen.py'), spec,
                                 env)
    return reason, result, env


def test_sample_and_evaluate_runs_sample_tool_per_scale(tmp_path, monkeypatch):
    fake = FakeProcesses()
    reason, result, env = _run(tmp_path, monkeypatch, fake)
    assert reason == ''
    assert fake.calls == [
        ([sys.executable, str(SAMPLE_TOOL), 'cfg/gen.py', 'ckpt.pth',
          '--tokenizer', 'tok.py', 'tok.pth', '--num', '6', '--cfg-scale',
          str(scale), '--batch-size', '8', '--out',
          str(tmp_path / f'samples_cfg{scale}'), '--seed', '1'],
         tmp_path / f'sample_cfg{scale}.log', env)
        for scale in (1.0, 3.0)]
    assert fake.calls[0][2] is env
    assert result.metrics == {
        'nll': 2.0, 'images_per_s@cfg1.0': 10.0, 'tokens_per_s@cfg1.0': 100.0,
        'images_per_s@cfg3.0': 30.0, 'tokens_per_s@cfg3.0': 300.0}
    assert result.eval_time_s == 1.5


def test_sample_and_evaluate_scores_samples_with_eval_args(tmp_path,
                                                          monkeypatch):
    fake = FakeProcesses()
    reason, result, env = _run(tmp_path, monkeypatch, fake, cfg_scale=[2.0],
                               eval_args=['--metrics', 'fid'])
    assert reason == ''
    out = tmp_path / 'samples_cfg2.0'
    assert fake.calls[1] == (
        [sys.executable, str(EVAL_TOOL), str(out / 'samples.npz'),
         '--metrics', 'fid', '--out', str(out / 'metrics.json')],
        tmp_path / 'eval_cfg2.0.log', env)
    assert len(fake.calls) == 2
    assert result.metrics == {
        'nll': 2.0, 'images_per_s@cfg2.0': 20.0, 'tokens_per_s@cfg2.0': 200.0,
        'fid@cfg2.0': 9.5, 'accuracy@cfg2.0': 0.75}
    assert result.eval_time_s == 1.75


def test_sampling_failure_names_scale_and_error(tmp_path, monkeypatch):
    fake = FakeProcesses(codes=[0, 3], log_line='RuntimeError: out of memory')
    reason, result, _ = _run(tmp_path, monkeypatch, fake)
    assert reason == 'sampling at cfg 3.0: RuntimeError: out of memory'
    # The first scale's metrics stay; the failed scale's time counts.
    assert result.metrics == {'nll': 2.0, 'images_per_s@cfg1.0': 10.0,
                              'tokens_per_s@cfg1.0': 100.0}
    assert result.eval_time_s == 1.5
    fake = FakeProcesses(codes=[2])
    (tmp_path / 'quiet').mkdir()
    reason, result, _ = _run(tmp_path / 'quiet', monkeypatch, fake)
    assert reason == 'sampling at cfg 1.0: exited with code 2'
    assert len(fake.calls) == 1
    assert result.metrics == dict(nll=2.0)


def test_scoring_failure_names_scale_and_error(tmp_path, monkeypatch):
    fake = FakeProcesses(codes=[0, 1], log_line='ValueError: bad npz')
    reason, result, _ = _run(tmp_path, monkeypatch, fake, cfg_scale=[1.5, 3],
                             eval_args=['--metrics'])
    assert reason == 'scoring samples at cfg 1.5: ValueError: bad npz'
    assert len(fake.calls) == 2
    assert result.metrics == dict(nll=2.0)
    assert result.eval_time_s == 1.75
    # Exit code 0 but no metrics file: a failure too.
    fake = FakeProcesses(write_metrics=False)
    (tmp_path / 'quiet').mkdir()
    reason, result, _ = _run(tmp_path / 'quiet', monkeypatch, fake,
                             eval_args=['--metrics'])
    assert reason == 'scoring samples at cfg 1.0: exited with code 0'
    assert result.metrics == dict(nll=2.0)
