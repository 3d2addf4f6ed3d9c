"""fqzoo.ablation's runs, launchers and tool processes, without training:
the tool processes, the model description and the launchers are stand-ins
that record how they are called, so each run's arguments, outcome and
reason, the progress lines and the skipping of finished runs are checked
in well under a second (the end-to-end runs are in test_ablate.py)."""
import io
import json
import math
import os
import queue
import sys
import threading
import time
import types
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from fqzoo.ablation import launchers, process, runs
from fqzoo.ablation.launchers import LocalLauncher, visible_gpus
from fqzoo.ablation.records import RunResult, load_result
from fqzoo.ablation.runs import Progress, run_ablation, run_one

CONFIG = '''train_cfg = dict(type='IterBasedTrainLoop', max_iters=10,
                 val_interval=5)
model = dict(type='Anything')
randomness = dict(seed=0)
'''


# --- process.py ------------------------------------------------------------

def test_tools_are_the_repositorys():
    repo = process.REPO
    assert (repo / 'fqzoo' / 'ablation' / 'process.py').is_file()
    assert process.TRAIN_TOOL == repo / 'tools' / 'train.py'
    assert process.TEST_TOOL == repo / 'tools' / 'test.py'
    assert process.SAMPLE_TOOL == repo / 'tools' / 'sample.py'
    assert process.EVAL_TOOL == repo / 'tools' / 'eval_generation.py'


def test_run_process_appends_both_streams_from_the_repository(
        tmp_path, monkeypatch):
    """From another directory, with an environment only the process has:
    its working directory, both streams and its exit code reach the log,
    after what was there."""
    monkeypatch.chdir(tmp_path)
    log = tmp_path / 'train.log'
    log.write_text('before\n')
    script = ('import os, sys; print("cwd=" + os.getcwd()); '
              'print("var=" + os.environ.get("FQZOO_ABL_VAR", "unset")); '
              'print("on stderr", file=sys.stderr); sys.exit(3)')
    env = dict(os.environ, FQZOO_ABL_VAR='given')
    code, seconds = process.run_process([sys.executable, '-c', script], log,
                                        env)
    text = log.read_text()
    assert code == 3
    assert text.startswith('before\n')
    assert f'cwd={process.REPO}\n' in text
    assert 'var=given\n' in text
    assert 'on stderr\n' in text
    assert 0 < seconds < 60


# --- Progress --------------------------------------------------------------

@pytest.mark.parametrize('seconds,text', [
    (0, '0:00:00'), (59.6, '0:01:00'), (61, '0:01:01'), (3600, '1:00:00'),
    (3725, '1:02:05'), (90061, '25:01:01')])
def test_clock_is_hours_minutes_seconds(seconds, text):
    assert Progress.clock(seconds) == text


class _Stream(io.StringIO):
    """A text stream that counts its flushes."""

    flushes = 0

    def flush(self):
        self.flushes += 1
        super().flush()


def test_progress_lines_and_eta():
    stream = _Stream()
    progress = Progress(5, stream=stream)
    assert progress.total == 5 and progress.durations == []
    assert abs(progress.start - time.monotonic()) < 5
    assert progress.eta() == '?'
    progress.start = time.monotonic() - 65
    progress.begin(2, 'tiny', 3)
    assert stream.getvalue() == '[2/5] tiny seed=3 | elapsed 0:01:05 | ETA ?\n'
    assert stream.flushes >= 1

    ok = RunResult(config='tiny.py', name='tiny', seed=3, status='ok')
    failed = RunResult(config='tiny.py', name='tiny', seed=4, reason='boom')
    progress.end(ok, 2.0)
    progress.end(failed, 4.0)
    assert progress.durations == [2.0, 4.0]
    assert stream.getvalue().splitlines()[1:] == [
        '    tiny seed=3: ok (0:00:02)',
        '    tiny seed=4: FAILED: boom (0:00:04)']
    assert progress.eta() == '0:00:09'   # 3 runs left, 3 s each


def test_progress_writes_to_stdout_by_default(capsys):
    Progress(1).log('a line')
    assert capsys.readouterr().out == 'a line\n'


# --- run_one ---------------------------------------------------------------

class FakeTools:
    """Stands in for :func:`~fqzoo.ablation.process.run_process`: records
    each call, writes what the real tool would (a ``last_checkpoint``, a
    scalars file, the ``--out`` metrics) and returns the given codes."""

    def __init__(self, train_code=0, test_code=0, checkpoint=' /c/it_4.pth\n',
                 loss=1.0, metrics=None, train_log='', test_log=''):
        self.calls = []
        self.train_code, self.test_code = train_code, test_code
        self.checkpoint, self.loss = checkpoint, loss
        self.metrics = dict(psnr=20.0, per_class=dict(a=1.0), flag=True) \
            if metrics is None else metrics
        self.train_log, self.test_log = train_log, test_log

    def __call__(self, args, log_file, env):
        self.calls.append((list(args), Path(log_file), env))
        if args[1].endswith('train.py'):
            run_dir = Path(args[args.index('--work-dir') + 1])
            Path(log_file).write_text(self.train_log)
            if self.checkpoint is not None:
                (run_dir / 'last_checkpoint').write_text(self.checkpoint)
            scalars = run_dir / '20240101_000000' / 'vis_data'
            scalars.mkdir(parents=True, exist_ok=True)
            (scalars / 'scalars.json').write_text(
                json.dumps(dict(loss=self.loss, iter=2, step=2)) + '\n')
            return self.train_code, 1.5
        Path(log_file).write_text(self.test_log)
        if self.metrics is not False:
            Path(args[args.index('--out') + 1]).write_text(
                json.dumps(self.metrics))
        return self.test_code, 2.5


@pytest.fixture
def fake_run(tmp_path, monkeypatch):
    """``(config, tools, described)``: a plain config file, the recording
    stand-in for the tool processes (replace ``tools`` attributes before
    the run) and the configs :func:`describe_model` was given."""
    config = tmp_path / 'tiny_run.py'
    config.write_text(CONFIG)
    tools = FakeTools()
    described = []

    def describe(cfg):
        described.append(cfg)
        return dict(model='M(V)', codebook_sizes=[4, 4], params=7)

    monkeypatch.setattr(runs, 'run_process',
                        lambda *args: tools(*args))
    monkeypatch.setattr(runs, 'describe_model', describe)
    return config, tools, described


def test_run_one_trains_then_tests_the_written_config(fake_run, tmp_path):
    config, tools, described = fake_run
    run_dir = tmp_path / 'out' / 'tiny_run' / 'seed_3'
    env = {'ONLY': 'this'}
    result = run_one(str(config), run_dir, 3, max_iters=4,
                     cfg_options={'extra_key': 5}, env=env)
    run_config = run_dir / 'config.py'
    (train, train_log, train_env), (test, test_log, test_env) = tools.calls
    assert train == [sys.executable, str(process.TRAIN_TOOL), str(run_config),
                     '--work-dir', str(run_dir)]
    assert test == [sys.executable, str(process.TEST_TOOL), str(run_config),
                    '/c/it_4.pth', '--work-dir', str(run_dir / 'test'),
                    '--out', str(run_dir / 'metrics.json')]
    assert (train_log, test_log) == (run_dir / 'train.log',
                                     run_dir / 'test.log')
    assert train_env is env and test_env is env
    written = Config.fromfile(str(run_config))
    assert written.train_cfg.max_iters == 4
    assert written.randomness.seed == 3
    assert written.work_dir == str(run_dir)
    assert written.extra_key == 5
    assert described[0].train_cfg.max_iters == 4
    assert asdict(result) == dict(
        config=str(config), name='tiny_run', seed=3, status='ok', reason='',
        metrics=dict(psnr=20.0), model='M(V)', codebook_sizes=[4, 4],
        bits_per_token=0.0, grid='', params=7, train_time_s=1.5,
        eval_time_s=2.5, max_iters=4, work_dir=str(run_dir),
        checkpoint='/c/it_4.pth')
    assert load_result(run_dir) == result


def test_run_one_keeps_the_configs_budget_and_resumes(fake_run, tmp_path):
    """No ``max_iters``: the config's own; a ``last_checkpoint`` left by an
    interrupted run makes training resume."""
    config, tools, _ = fake_run
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    (run_dir / 'last_checkpoint').write_text('/c/it_2.pth')
    result = run_one(str(config), run_dir, 0)
    assert result.ok and result.max_iters == 10
    assert tools.calls[0][0][-1] == '--resume'
    assert tools.calls[0][2] is None
    assert Config.fromfile(str(run_dir / 'config.py')).train_cfg.max_iters \
        == 10


def test_run_one_seeds_a_config_without_randomness(fake_run, tmp_path):
    config, _, _ = fake_run
    config.write_text(CONFIG.replace('randomness = dict(seed=0)', ''))
    run_dir = tmp_path / 'run'
    assert run_one(str(config), run_dir, 3).ok
    assert Config.fromfile(str(run_dir / 'config.py')).get(
        'randomness', {}).get('seed') == 3


@pytest.mark.parametrize('tools,reason,calls', [
    (FakeTools(train_code=2, train_log='x\nValueError: bad lr\nnoise\n'),
     'ValueError: bad lr', 1),
    (FakeTools(train_code=2), 'training exited with code 2', 1),
    (FakeTools(loss=math.nan), 'non-finite loss (nan) at iteration 2', 1),
    (FakeTools(checkpoint=None), 'training wrote no checkpoint', 1),
    (FakeTools(test_code=1, test_log='RuntimeError: no data\n'),
     'RuntimeError: no data', 2),
    (FakeTools(test_code=1), 'testing exited with code 1', 2),
    (FakeTools(metrics=False), 'testing exited with code 0', 2),
    (FakeTools(metrics=dict(a=math.nan, b=1.0, c=math.inf)),
     'non-finite metrics: a, c', 2),
], ids=['train-error-line', 'train-code', 'nan-loss', 'no-checkpoint',
        'test-error-line', 'test-code', 'no-metrics', 'non-finite-metrics'])
def test_run_one_failures_name_their_reason(fake_run, tmp_path, monkeypatch,
                                            tools, reason, calls):
    config, _, _ = fake_run
    tools.calls = []
    monkeypatch.setattr(runs, 'run_process', tools)
    run_dir = tmp_path / 'run'
    result = run_one(str(config), run_dir, 1)
    assert (result.status, result.reason) == ('failed', reason)
    assert len(tools.calls) == calls
    assert load_result(run_dir) == result


def test_run_one_turns_an_exception_into_a_failed_result(fake_run, tmp_path,
                                                         monkeypatch):
    config, tools, _ = fake_run

    def describe(cfg):
        raise KeyError('no such head')

    monkeypatch.setattr(runs, 'describe_model', describe)
    run_dir = tmp_path / 'run'
    result = run_one(str(config), run_dir, 1)
    assert (result.status, result.reason) == ('failed',
                                              'KeyError: no such head')
    assert tools.calls == []
    assert load_result(run_dir) == result


@pytest.mark.parametrize('sample_reason', ['', 'sampling crashed'])
def test_run_one_samples_a_generator(fake_run, tmp_path, monkeypatch,
                                     sample_reason):
    """A config with ``sample_eval`` is sampled after testing; its reason
    ends the run, before the metrics are checked."""
    config, tools, _ = fake_run
    seen = []
    spec = dict(num=2, cfg_scale=[1.0])

    def sample(result, run_dir, run_config, spec_, env):
        seen.append((result.checkpoint, run_dir, run_config, spec_, env))
        result.metrics['fid@cfg1.0'] = math.nan
        return sample_reason

    monkeypatch.setattr(runs, 'sample_eval_spec', lambda cfg: spec)
    monkeypatch.setattr(runs, 'sample_and_evaluate', sample)
    run_dir = tmp_path / 'run'
    env = {'E': '1'}
    result = run_one(str(config), run_dir, 1, env=env)
    assert seen == [('/c/it_4.pth', run_dir, run_dir / 'config.py', spec,
                     env)]
    assert result.reason == (sample_reason or 'non-finite metrics: fid@cfg1.0')
    assert result.status == 'failed'


# --- run_ablation ----------------------------------------------------------

class FakeLauncher:
    """Records what run_ablation hands a launcher; each run gives a result
    whose reason is its run dir (ok unless ``fail``)."""

    def __init__(self, fail=False):
        self.fail = fail
        self.calls = []

    def run(self, jobs, run, progress, env=None):
        self.calls.append((list(jobs), run, progress, env))
        return {run_dir: RunResult(config=config, name=Path(config).stem,
                                   seed=seed, reason=str(run_dir),
                                   status='failed' if self.fail else 'ok')
                for config, seed, run_dir in jobs}


def _store(run_dir: Path, **fields) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    result = RunResult(config='x.py', name='x', seed=0, **fields)
    (run_dir / 'result.json').write_text(json.dumps(asdict(result)))
    (run_dir / 'iter_2.pth').write_bytes(b'')


def test_run_ablation_hands_every_run_to_the_launcher(tmp_path):
    launcher = FakeLauncher()
    env = {'E': '1'}
    work = str(tmp_path / 'w')
    stream = io.StringIO()
    results = run_ablation(['c/a.py', 'c/b.py'], work, seeds=[1, 0],
                           max_iters=5, cfg_options={'k': 1}, env=env,
                           progress=lambda n: Progress(n, stream=stream),
                           launcher=launcher)
    dirs = [Path(work) / stem / f'seed_{seed}'
            for stem in ('a', 'b') for seed in (1, 0)]
    ((jobs, run, progress, given_env),) = launcher.calls
    assert jobs == [(config, seed, d) for (config, seed), d in zip(
        [('c/a.py', 1), ('c/a.py', 0), ('c/b.py', 1), ('c/b.py', 0)], dirs)]
    assert run.func is run_one
    assert run.args == () and run.keywords == dict(max_iters=5,
                                                   cfg_options={'k': 1})
    assert progress.total == 4 and progress.stream is stream
    assert given_env is env
    assert [r.reason for r in results] == [str(d) for d in dirs]
    assert stream.getvalue() == ''


def test_run_ablation_defaults(tmp_path, monkeypatch):
    """One seed, 0; the local launcher, one run after another, reporting
    to stdout; each run is run_one with no budget and no overrides."""
    calls = []

    def fake_run_one(config, run_dir, seed, **kwargs):
        calls.append((config, run_dir, seed, kwargs))
        return RunResult(config=config, name=Path(config).stem, seed=seed,
                         status='ok')

    monkeypatch.setattr(runs, 'run_one', fake_run_one)
    monkeypatch.setattr(sys, 'stdout', io.StringIO())
    results = run_ablation(['a.py'], str(tmp_path))
    out = sys.stdout.getvalue()
    assert calls == [('a.py', tmp_path / 'a' / 'seed_0', 0,
                      dict(max_iters=None, cfg_options=None, env=None))]
    assert out.startswith('[1/1] a seed=0 | elapsed ')
    assert '    a seed=0: ok (' in out
    assert [r.ok for r in results] == [True]


def test_duplicate_config_names_are_listed(tmp_path):
    with pytest.raises(ValueError) as info:
        run_ablation(['a/x.py', 'b/x.py', 'c/y.py', 'd/w.py', 'e/w.py'],
                     str(tmp_path), launcher=FakeLauncher())
    assert str(info.value) == \
        "config names must differ, repeated: ['w', 'x']"


def test_finished_runs_are_skipped_and_counted(tmp_path):
    work = tmp_path / 'w'
    _store(work / 'a' / 'seed_0', status='ok', reason='stored ok')
    _store(work / 'b' / 'seed_0', reason='stored failure')
    launcher = FakeLauncher()
    stream = io.StringIO()
    results = run_ablation(['a.py', 'b.py', 'c.py'], str(work),
                           progress=lambda n: Progress(n, stream=stream),
                           launcher=launcher)
    ((jobs, _, progress, _),) = launcher.calls
    assert jobs == [('c.py', 0, work / 'c' / 'seed_0')]
    assert progress.total == 1
    assert stream.getvalue() == \
        f'2 of 3 runs already finished in {work}: skipped\n'
    assert [r.reason for r in results] == [
        'stored ok', 'stored failure', str(work / 'c' / 'seed_0')]


@pytest.mark.parametrize('status,train_time_s,checkpoint,retried,cleared', [
    ('ok', 3.0, '', False, False),
    ('failed', 0.0, '', True, False),
    ('failed', 3.0, '', True, True),
    ('failed', 3.0, 'iter_2.pth', True, False),
])
def test_retry_failed_reruns_failures_only(tmp_path, status, train_time_s,
                                           checkpoint, retried, cleared):
    """Retried: a run whose training failed (it took time and left no
    checkpoint) from an empty dir, any other failed run keeping its files
    but its result; a finished run is never retried."""
    run_dir = tmp_path / 'x' / 'seed_0'
    _store(run_dir, status=status, train_time_s=train_time_s,
           checkpoint=checkpoint, reason='stored')
    launcher = FakeLauncher()
    run_ablation(['x.py'], str(tmp_path), retry_failed=True,
                 launcher=launcher)
    jobs = launcher.calls[0][0]
    assert jobs == ([('x.py', 0, run_dir)] if retried else [])
    assert (run_dir / 'iter_2.pth').exists() == (not cleared)
    assert (run_dir / 'result.json').exists() == (not retried)


# --- LocalLauncher ---------------------------------------------------------

def test_visible_gpus(monkeypatch):
    assert visible_gpus({'CUDA_VISIBLE_DEVICES': ',3,,5'}) == ['3', '5']
    assert visible_gpus({'CUDA_VISIBLE_DEVICES': ''}) == []
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    assert visible_gpus({}) == ['0', '1']


def test_local_launcher_defaults(monkeypatch):
    monkeypatch.setattr(os, 'cpu_count', lambda: 12)
    launcher = LocalLauncher()
    assert (launcher.parallel, launcher.cpu_count, launcher.gpus) == (
        1, 12, None)
    monkeypatch.setattr(os, 'cpu_count', lambda: None)
    assert LocalLauncher(1).cpu_count == 1
    assert LocalLauncher(2, cpu_count=3, gpus=[1, 2]).gpus == ['1', '2']
    with pytest.raises(ValueError) as info:
        LocalLauncher(0)
    assert str(info.value) == 'parallel must be >= 1, got 0'


def test_slot_env_copies_the_environment(monkeypatch):
    """Given none, this process's; the given dict is not changed; GPUs
    from its ``CUDA_VISIBLE_DEVICES`` when none are given."""
    monkeypatch.setenv('FQZOO_ABL_VAR', 'mine')
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '6,8')
    launcher = LocalLauncher(3, cpu_count=7)
    env = launcher.slot_env(1, None)
    assert env['FQZOO_ABL_VAR'] == 'mine'
    assert (env['OMP_NUM_THREADS'], env['MKL_NUM_THREADS']) == ('2', '2')
    assert env['CUDA_VISIBLE_DEVICES'] == '8'
    given = {'CUDA_VISIBLE_DEVICES': '6,8,9'}
    assert launcher.slot_env(2, given)['CUDA_VISIBLE_DEVICES'] == '9'
    assert given == {'CUDA_VISIBLE_DEVICES': '6,8,9'}
    assert 'FQZOO_ABL_VAR' not in launcher.slot_env(0, given)
    kept = LocalLauncher(2, cpu_count=2, gpus=[]).slot_env(
        1, {'CUDA_VISIBLE_DEVICES': '3'})
    assert (kept['CUDA_VISIBLE_DEVICES'], kept['OMP_NUM_THREADS']) == ('3',
                                                                      '1')


class RecordingProgress:
    """Records begin / log / end calls."""

    def __init__(self):
        self.calls = []

    def begin(self, index, name, seed):
        self.calls.append(('begin', index, name, seed))

    def log(self, text):
        self.calls.append(('log', text))

    def end(self, result, seconds):
        assert 0 <= seconds < 60
        self.calls.append(('end', result.name, result.seed))


def _jobs(tmp_path, count=3):
    return [(f'cfg/c{i}.py', 10 + i, tmp_path / f'c{i}') for i in range(count)]


def _ok(config, run_dir, seed, env=None):
    return RunResult(config=config, name=Path(config).stem, seed=seed,
                     status='ok', reason=str(env), work_dir=str(run_dir))


def test_one_after_another_in_the_given_environment(tmp_path):
    env = {'E': '1'}
    seen = []

    def run(config, run_dir, seed, env=None):
        seen.append(env)
        return _ok(config, run_dir, seed)

    progress = RecordingProgress()
    jobs = _jobs(tmp_path, 2)
    results = LocalLauncher().run(jobs, run, progress, env)
    assert all(e is env for e in seen) and len(seen) == 2
    assert progress.calls == [('begin', 1, 'c0', 10), ('end', 'c0', 10),
                              ('begin', 2, 'c1', 11), ('end', 'c1', 11)]
    assert {d: (r.name, r.seed, r.work_dir) for d, r in results.items()} == {
        d: (Path(c).stem, s, str(d)) for c, s, d in jobs}


class _TimedQueue(queue.Queue):
    """A slot queue that gives up after 10 s instead of waiting forever
    (for a slot that was never given back)."""

    def get(self, block=True, timeout=None):
        return super().get(timeout=10)


def test_side_by_side_slots_are_shared_in_turn(tmp_path, monkeypatch):
    """Two slots, three runs: each run has a slot's environment, the third
    gets the slot given back, and no more than two threads run them."""
    monkeypatch.setattr(launchers, 'queue',
                        types.SimpleNamespace(Queue=_TimedQueue))
    threads = set()

    def run(config, run_dir, seed, env=None):
        threads.add(threading.current_thread().name)
        time.sleep(0.05)
        return _ok(config, run_dir, seed,
                   env=(env['CUDA_VISIBLE_DEVICES'], env['OMP_NUM_THREADS'],
                        env.get('E')))

    progress = RecordingProgress()
    jobs = _jobs(tmp_path)
    results = LocalLauncher(2, cpu_count=4, gpus=['5', '7']).run(
        jobs, run, progress, {'E': '1'})
    assert len(threads) <= 2
    assert {d: (r.name, r.seed, r.work_dir) for d, r in results.items()} == {
        d: (Path(c).stem, s, str(d)) for c, s, d in jobs}
    assert {r.reason for r in results.values()} <= {
        str(('5', '2', '1')), str(('7', '2', '1'))}
    assert sorted(c for c in progress.calls if c[0] == 'begin') == [
        ('begin', i + 1, f'c{i}', 10 + i) for i in range(3)]
    assert sorted(c for c in progress.calls if c[0] == 'end') == [
        ('end', f'c{i}', 10 + i) for i in range(3)]


def test_side_by_side_failure_is_raised(tmp_path):
    def run(config, run_dir, seed, env=None):
        raise RuntimeError(f'crashed {seed}')

    with pytest.raises(RuntimeError, match='crashed 10'):
        LocalLauncher(2, cpu_count=2, gpus=[]).run(
            _jobs(tmp_path, 1), run, RecordingProgress())


# --- SlurmLauncher (a stand-in submitit) -----------------------------------

class _Job:
    def __init__(self, job_id, call):
        self.job_id = job_id
        self.call = call

    def result(self):
        return self.call()


class _Executor:
    def __init__(self, folder, cluster):
        self.folder, self.cluster = folder, cluster
        self.updates, self.submitted = [], []

    def update_parameters(self, **params):
        self.updates.append(params)

    def submit(self, fn, *args, **kwargs):
        self.submitted.append((fn, args, kwargs))
        return _Job(str(100 + len(self.submitted)),
                    lambda: fn(*args, **kwargs))


@pytest.fixture
def fake_submitit(monkeypatch):
    """A ``submitit`` whose jobs run when their result is asked for; the
    jobs complete in reverse order. Returns the polls asked for."""
    polls = []

    def as_completed(jobs, poll_frequency):
        polls.append(poll_frequency)
        return list(reversed(jobs))

    module = types.SimpleNamespace(
        AutoExecutor=_Executor,
        helpers=types.SimpleNamespace(as_completed=as_completed))
    monkeypatch.setitem(sys.modules, 'submitit', module)
    return polls


def test_slurm_launcher_parameters(tmp_path, fake_submitit):
    from fqzoo.ablation import SlurmLauncher
    launcher = SlurmLauncher(tmp_path / 'jobs')
    executor = launcher.executor
    assert (executor.folder, executor.cluster) == (str(tmp_path / 'jobs'),
                                                   'slurm')
    assert executor.updates == [dict(
        timeout_min=240, nodes=1, tasks_per_node=1, cpus_per_task=4,
        gpus_per_node=0, slurm_additional_parameters={})]
    assert launcher.poll_s == 10.0
    args = {'account': 'proj'}
    launcher = SlurmLauncher('j', partition='gpu', gpus_per_run=2,
                             cpus_per_run=8, timeout_min=90, slurm_args=args,
                             cluster='local', poll_s=0.5)
    assert launcher.executor.cluster == 'local' and launcher.poll_s == 0.5
    assert launcher.executor.updates == [dict(
        timeout_min=90, nodes=1, tasks_per_node=1, cpus_per_task=8,
        gpus_per_node=2, slurm_additional_parameters={'account': 'proj'},
        slurm_partition='gpu')]
    assert launcher.executor.updates[0]['slurm_additional_parameters'] \
        is not args


def test_slurm_launcher_without_submitit_says_what_to_install(monkeypatch):
    from fqzoo.ablation import SlurmLauncher
    monkeypatch.setitem(sys.modules, 'submitit', None)
    with pytest.raises(ImportError) as info:
        SlurmLauncher('jobs')
    assert str(info.value) == ('--launcher slurm needs submitit: pip install '
                               '"fqzoo[cluster]"')
    assert isinstance(info.value.__cause__, ImportError)


def test_slurm_jobs_are_submitted_named_and_collected(tmp_path,
                                                      fake_submitit):
    """Each job is named for its run and runs ``run`` with the run's
    arguments; a job that fails (not its run) gives a failed result naming
    the job."""
    from fqzoo.ablation import SlurmLauncher
    launcher = SlurmLauncher(tmp_path, poll_s=0.25)
    env = {'E': '1'}

    def run(config, run_dir, seed, env=None):
        if seed == 11:
            raise KeyError('node lost')
        return _ok(config, run_dir, seed, env=env)

    jobs = _jobs(tmp_path, 2)
    progress = RecordingProgress()
    results = launcher.run(jobs, run, progress, env)
    executor = launcher.executor
    assert [u for u in executor.updates[1:]] == [dict(name='c0_seed10'),
                                                  dict(name='c1_seed11')]
    assert executor.submitted == [(run, (c, d, s), dict(env=env))
                                  for c, s, d in jobs]
    assert fake_submitit == [0.25]
    assert progress.calls == [
        ('begin', 1, 'c0', 10), ('log', '    submitted as job 101'),
        ('begin', 2, 'c1', 11), ('log', '    submitted as job 102'),
        ('end', 'c1', 11), ('end', 'c0', 10)]
    assert results[jobs[0][2]].ok
    assert results[jobs[0][2]].reason == str(env)
    assert asdict(results[jobs[1][2]]) == asdict(RunResult(
        config='cfg/c1.py', name='c1', seed=11, work_dir=str(jobs[1][2]),
        reason='job 102: KeyError: node lost'))
