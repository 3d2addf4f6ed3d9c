"""tools/ablate.py and fqzoo.ablation: budget overrides, log parsing,
failure handling, skipping finished runs and the report; the launchers
(--parallel, Slurm through submitit's local executor) give the rows of the
one-after-another run (their unit tests: test_ablate_launchers.py)."""
import csv
import json
import math
from pathlib import Path

import pytest
from conftest import REPO, run_tool, tool_env, write_tiny_config
from mmengine.config import Config
from PIL import Image

from fqzoo.ablation import (
    LocalLauncher,
    RunResult,
    apply_budget,
    last_error_line,
    load_result,
    markdown_table,
    non_finite_loss,
    read_scalars,
    run_ablation,
    write_report,
)

FQ_CONFIG = '''_base_ = ['./tiny_vq.py']
model = dict(quantizer=dict(_delete_=True, type='FactorizedQuantizer',
                            num_codebooks=2,
                            quantizer=dict(type='VectorQuantizer',
                                           codebook_size=16, embed_dim=4)))
'''


def _configs(root: Path) -> dict:
    """tiny_vq, tiny_fq (2 sub-codebooks), broken (unknown quantizer: fails
    before training) and crash (unknown dataset: fails in the training
    process)."""
    write_tiny_config(root / 'tiny_vq.py', root / 'unused', max_iters=4,
                      val_interval=1)
    (root / 'tiny_fq.py').write_text(FQ_CONFIG)
    (root / 'broken.py').write_text(
        "_base_ = ['./tiny_vq.py']\nmodel = dict(quantizer=dict("
        "type='NoSuchQuantizer'))\n")
    (root / 'crash.py').write_text(
        "_base_ = ['./tiny_vq.py']\ntrain_dataloader = dict(dataset=dict("
        "type='NoSuchDataset'))\n")
    return {name: str(root / f'{name}.py')
            for name in ('tiny_vq', 'tiny_fq', 'broken', 'crash')}


@pytest.fixture(scope='module')
def ablation(tmp_path_factory):
    """One ``tools/ablate.py`` run of the four configs of :func:`_configs`
    (2 iterations each), shared by this file's slow tests: its tiny_vq and
    tiny_fq runs are also the one-after-another rows the launchers must
    give. ``(configs, out, proc)``."""
    root = tmp_path_factory.mktemp('ablate')
    configs = _configs(root)
    out = root / 'ablation'
    proc = run_tool(['tools/ablate.py', *configs.values(), '--max-iters', '2',
                     '--work-dir', str(out)], timeout=240)
    return configs, out, proc


@pytest.mark.slow
def test_ablate_reports_failures_and_skips_finished_runs(ablation):
    configs, out, proc = ablation
    assert '[4/4] crash seed=0' in proc.stdout

    with open(out / 'ablation.csv') as f:
        runs = {row['name']: row for row in csv.DictReader(f)}
    assert set(runs) == set(configs)
    assert {n: r['status'] for n, r in runs.items()} == dict(
        tiny_vq='ok', tiny_fq='ok', broken='failed', crash='failed')
    assert 'Unknown quantizer type "NoSuchQuantizer"' in \
        runs['broken']['reason']
    assert 'NoSuchDataset' in runs['crash']['reason']
    assert runs['tiny_fq']['model'] == 'FactorizedQuantizer(VectorQuantizer)'
    assert (runs['tiny_fq']['tokens'], runs['tiny_fq']['num_codebooks'],
            float(runs['tiny_fq']['bits_per_token'])) == ('16 x 2', '2', 8.0)
    assert runs['tiny_fq']['grid'] == ''  # a tokenizer's depends on the image
    assert float(runs['tiny_vq']['bits_per_token']) == 5.0
    for name in ('tiny_vq', 'tiny_fq'):
        assert float(runs[name]['psnr']) > 0
        assert int(runs[name]['params']) > 0
        assert int(runs[name]['max_iters']) == 2
    assert runs['tiny_fq']['usage_1'] and not runs['tiny_vq']['usage_1']

    with open(out / 'ablation_summary.csv') as f:
        summary = {row['name']: row for row in csv.DictReader(f)}
    assert summary['tiny_fq']['ok'] == '1' and summary['crash']['ok'] == '0'
    table = (out / 'ablation.md').read_text()
    assert '| tiny_fq | FactorizedQuantizer(VectorQuantizer) | 16 x 2 | 8.0 |' \
        in table
    assert '| broken |' in table
    assert 'broken, seed 0: InputKeyError: Unknown quantizer type' in table
    assert (out / 'ablation.png').stat().st_size > 0
    run_dir = out / 'tiny_fq' / 'seed_0'
    assert (run_dir / 'metrics.json').is_file()
    assert Config.fromfile(run_dir / 'config.py').train_cfg.max_iters == 2
    assert read_scalars(run_dir)[1], 'validation curves were logged'

    stamp = (run_dir / 'result.json').stat().st_mtime_ns
    again = run_tool(['tools/ablate.py', *configs.values(), '--max-iters', '2',
                      '--work-dir', str(out)], timeout=60)
    assert '4 of 4 runs already finished' in again.stdout
    assert '[1/' not in again.stdout
    assert (run_dir / 'result.json').stat().st_mtime_ns == stamp


def _rows(results):
    """What the report says of each run, but its timings and folder."""
    return {(r.name, r.seed): (r.status, r.reason, r.metrics, r.params,
                               r.bits_per_token, r.max_iters)
            for r in results}


@pytest.fixture(scope='module')
def sequential(ablation):
    """The tiny_vq and tiny_fq runs of :func:`ablation` (one after
    another), as stored: ``(paths, results)``."""
    configs, out, _ = ablation
    paths = [configs['tiny_vq'], configs['tiny_fq']]
    return paths, [load_result(out / Path(p).stem / 'seed_0')
                   for p in paths]


@pytest.mark.slow
def test_parallel_gives_the_sequential_rows(sequential, tmp_path):
    paths, reference = sequential
    assert all(r.ok for r in reference) and reference[0].metrics
    out = tmp_path / 'parallel'
    results = run_ablation(paths, str(out), max_iters=2, env=tool_env(),
                           launcher=LocalLauncher(2, cpu_count=2))
    assert _rows(results) == _rows(reference)
    assert all((out / Path(p).stem / 'seed_0' / 'result.json').is_file()
               for p in paths)


@pytest.mark.slow
def test_slurm_jobs_give_the_sequential_rows(sequential, tmp_path,
                                             monkeypatch):
    """One submitit job per run (the local executor: same code path as
    Slurm); finished runs are skipped when started again. The jobs inherit
    the submitting environment, as sbatch's do: there, tests/ (the configs'
    custom_imports) is on PYTHONPATH."""
    pytest.importorskip('submitit')
    from fqzoo.ablation import SlurmLauncher
    monkeypatch.setenv('PYTHONPATH', tool_env()['PYTHONPATH'])
    paths, reference = sequential
    out = tmp_path / 'slurm'
    launcher = SlurmLauncher(out / 'jobs', cluster='local', poll_s=0.5,
                             timeout_min=30)
    results = run_ablation(paths, str(out), max_iters=2, env=tool_env(),
                           launcher=launcher)
    assert _rows(results) == _rows(reference)
    assert len(list((out / 'jobs').glob('*_result.pkl'))) == 2
    again = run_ablation(paths, str(out), max_iters=2, env=tool_env(),
                         launcher=launcher)
    assert _rows(again) == _rows(reference)
    assert len(list((out / 'jobs').glob('*_result.pkl'))) == 2


def test_failed_runs_are_kept_unless_retried(tmp_path):
    configs = _configs(tmp_path)
    run_dir = tmp_path / 'out' / 'broken' / 'seed_0'
    run_dir.mkdir(parents=True)
    old = RunResult(config=configs['broken'], name='broken', seed=0,
                    reason='old reason')
    (run_dir / 'result.json').write_text(json.dumps(old.__dict__))
    kept = run_ablation([configs['broken']], str(tmp_path / 'out'),
                        env=tool_env())
    assert kept[0].reason == 'old reason'
    retried = run_ablation([configs['broken']], str(tmp_path / 'out'),
                           retry_failed=True, env=tool_env())
    assert 'NoSuchQuantizer' in retried[0].reason
    assert load_result(run_dir).reason == retried[0].reason


@pytest.mark.parametrize('checkpoint,kept', [('', False),
                                              ('iter_2.pth', True)])
def test_retry_clears_only_a_failed_training(tmp_path, checkpoint, kept):
    """A run that failed in training starts again from an empty dir; one
    that failed after it keeps its checkpoints (it is evaluated again)."""
    configs = _configs(tmp_path)
    run_dir = tmp_path / 'out' / 'broken' / 'seed_0'
    run_dir.mkdir(parents=True)
    (run_dir / 'iter_2.pth').write_bytes(b'')
    old = RunResult(config=configs['broken'], name='broken', seed=0,
                    reason='old reason', train_time_s=3.0,
                    checkpoint=checkpoint)
    (run_dir / 'result.json').write_text(json.dumps(old.__dict__))
    retried = run_ablation([configs['broken']], str(tmp_path / 'out'),
                           retry_failed=True, env=tool_env())
    assert 'NoSuchQuantizer' in retried[0].reason
    assert (run_dir / 'iter_2.pth').exists() == kept


def test_duplicate_config_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match='must differ'):
        run_ablation(['a/x.py', 'b/x.py'], str(tmp_path))


def test_apply_budget_clips_schedule_and_sets_seed():
    cfg = Config.fromfile(REPO / 'configs' / 'ablation' / 'fq2.py')
    apply_budget(cfg, max_iters=100, seed=7)
    assert cfg.train_cfg.max_iters == 100
    assert cfg.train_cfg.val_interval == 100
    assert cfg.param_scheduler[0].end == 100
    assert cfg.param_scheduler[0].T_max == 100
    assert cfg.default_hooks.checkpoint.save_last
    assert cfg.randomness.seed == 7
    apply_budget(cfg, max_iters=1000)
    assert cfg.train_cfg.val_interval == 100


def _write_scalars(run_dir: Path, stamp: str, lines: list) -> None:
    path = run_dir / stamp / 'vis_data' / 'scalars.json'
    path.parent.mkdir(parents=True)
    path.write_text('\n'.join(json.dumps(line) for line in lines) + '\n')


def test_read_scalars_gives_validation_its_iteration(tmp_path):
    _write_scalars(tmp_path, '20240101_000000', [
        dict(loss=1.0, iter=1, step=1), dict(loss=0.9, iter=2, step=2),
        dict(psnr=20.0, step=0)])
    _write_scalars(tmp_path, '20240101_000100', [   # resumed at 2
        dict(loss=0.8, iter=3, step=3), dict(loss=0.7, iter=4, step=4),
        dict(psnr=21.0, step=0)])
    train, val = read_scalars(tmp_path)
    assert [r['iter'] for r in train] == [1, 2, 3, 4]
    assert [(r['iter'], r['psnr']) for r in val] == [(2, 20.0), (4, 21.0)]
    assert non_finite_loss(train) is None
    assert non_finite_loss(train + [dict(loss=math.nan, iter=5)]) == \
        'non-finite loss (nan) at iteration 5'


def test_last_error_line(tmp_path):
    log = tmp_path / 'train.log'
    log.write_text('Iter(train) [1/4] loss: 1.0\nTraceback (most recent call '
                   'last):\n  File "x.py", line 1\nRuntimeError: boom\n'
                   'more noise\n')
    assert last_error_line(log) == 'RuntimeError: boom'
    assert last_error_line(tmp_path / 'missing.log') == ''


def test_report_aggregates_seeds(tmp_path):
    def result(seed: int, psnr: float, status: str = 'ok') -> RunResult:
        return RunResult(config='fq2.py', name='fq2', seed=seed, status=status,
                         reason='' if status == 'ok' else 'NaN',
                         metrics=dict(psnr=psnr, usage_0=0.5, usage_1=0.7,
                                      fid_effnet_offline=3.0,
                                      effnet_perceptual=0.2),
                         model='FQ', codebook_sizes=[512, 512],
                         bits_per_token=18.0, params=2_000_000,
                         train_time_s=10.0, max_iters=100,
                         work_dir=str(tmp_path / f'seed_{seed}'))
    results = [result(0, 20.0), result(1, 22.0), result(2, 0.0, 'failed')]
    table = markdown_table(results)
    header = table.splitlines()[0]
    for column in ('PSNR', 'effnet_perceptual', 'fid_effnet_offline',
                   'usage_0', 'usage_1', 'bits/token', 'params (M)'):
        assert column in header
    assert 'grid' not in header and '| fq2 | FQ | 512 x 2 | 18.0 |' in table
    assert '21.000 ± 1.414' in table
    assert '2/3 (failed)' in table and 'fq2, seed 2: NaN' in table
    files = write_report(results, str(tmp_path))
    with open(files['summary_csv']) as f:
        (row,) = list(csv.DictReader(f))
    assert float(row['psnr_mean']) == 21.0 and row['ok'] == '2'
    with open(files['csv']) as f:
        assert len(list(csv.DictReader(f))) == 3
    # no run logged validation: the bars alone, one row (3.4 in at 100 dpi)
    with Image.open(files['png']) as image:
        assert image.height == 340
    # a validation curve for one run: curves on top, bars below (6.4 in)
    _write_scalars(tmp_path / 'seed_0', '20240101_000000', [
        dict(loss=1.0, iter=1, step=1), dict(psnr=19.0, step=0)])
    files = write_report(results, str(tmp_path))
    with Image.open(files['png']) as image:
        assert image.height == 640
