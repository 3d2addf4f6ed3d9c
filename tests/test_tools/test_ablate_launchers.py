"""tools/ablate.py's launchers: runs side by side (--parallel) with their
share of cores or a GPU each, and Slurm jobs through submitit. That they
give the same report rows as one after another is in test_ablate.py, next
to the ablation run those rows come from."""
import importlib.util
import threading
from pathlib import Path

import pytest
from conftest import REPO, tool_env

from fqzoo.ablation import LocalLauncher, RunResult
from fqzoo.ablation.launchers import visible_gpus
from fqzoo.ablation.runs import Progress


def _ablate_cli():
    spec = importlib.util.spec_from_file_location(
        'ablate_cli', REPO / 'tools' / 'ablate.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_slot_env_shares_cores_and_hands_out_gpus():
    launcher = LocalLauncher(3, cpu_count=8, gpus=['4', '7'])
    envs = [launcher.slot_env(slot, {'A': '1'}) for slot in range(3)]
    assert [e['OMP_NUM_THREADS'] for e in envs] == ['2', '2', '2']
    assert [e['MKL_NUM_THREADS'] for e in envs] == ['2', '2', '2']
    assert [e['CUDA_VISIBLE_DEVICES'] for e in envs] == ['4', '7', '4']
    assert all(e['A'] == '1' for e in envs)
    cpu_only = LocalLauncher(4, cpu_count=2).slot_env(
        1, {'CUDA_VISIBLE_DEVICES': ''})
    assert cpu_only['OMP_NUM_THREADS'] == '1'      # never 0
    assert cpu_only['CUDA_VISIBLE_DEVICES'] == ''  # no GPU to hand out
    assert visible_gpus({'CUDA_VISIBLE_DEVICES': '2,5'}) == ['2', '5']
    with pytest.raises(ValueError, match='parallel'):
        LocalLauncher(0)


def test_parallel_runs_side_by_side(tmp_path):
    """Two runs must be inside ``run`` at once to pass the barrier; one
    after another they would time out."""
    barrier = threading.Barrier(2, timeout=10)
    seen = {}

    def run(config, run_dir, seed, env=None):
        barrier.wait()
        seen[(config, seed)] = env['OMP_NUM_THREADS']
        return RunResult(config=config, name=Path(config).stem, seed=seed,
                         status='ok', work_dir=str(run_dir))

    jobs = [(f'{name}.py', seed, tmp_path / f'{name}_{seed}')
            for name in ('a', 'b') for seed in (0, 1)]
    launcher = LocalLauncher(2, cpu_count=6, gpus=[])
    results = launcher.run(jobs, run, Progress(len(jobs),
                                               stream=open('/dev/null', 'w')),
                           env={})
    assert {d: (r.name, r.seed) for d, r in results.items()} == {
        d: (Path(c).stem, s) for c, s, d in jobs}
    assert seen == {(c, s): '3' for c, s, _ in jobs}


def test_slurm_command_line_makes_the_sbatch_script(tmp_path, monkeypatch):
    """The sbatch options a job gets from the command line (submitit
    checks for ``srun``: a stand-in is put on PATH)."""
    pytest.importorskip('submitit')
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'srun').write_text('#!/bin/sh\nexit 0\n')
    (bin_dir / 'srun').chmod(0o755)
    monkeypatch.setenv('PATH', f'{bin_dir}:{tool_env()["PATH"]}')
    cli = _ablate_cli()
    args = cli.parse_args([
        'a.py', '--work-dir', str(tmp_path / 'w'), '--launcher', 'slurm',
        '--partition', 'gpu', '--gpus-per-run', '2', '--cpus-per-run', '8',
        '--timeout-min', '90', '--slurm-arg', 'account=proj', 'qos=high'])
    launcher = cli.build_launcher(args)
    script = launcher.executor._executor._make_submission_file_text(
        'python job', 'uid')
    for line in ('--partition=gpu', '--gpus-per-node=2', '--cpus-per-task=8',
                 '--time=90', '--account=proj', '--qos=high', '--nodes=1'):
        assert f'#SBATCH {line}\n' in script, line
    assert str(tmp_path / 'w' / 'slurm') in script
    with pytest.raises(SystemExit):
        cli.parse_args(['a.py', '--launcher', 'slurm', '--parallel', '2'])
