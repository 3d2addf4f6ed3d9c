"""Where the runs of an ablation run: here one after another, here several
side by side (:class:`LocalLauncher`), or as Slurm jobs
(:class:`SlurmLauncher`, through ``submitit``).

A launcher gets the runs still to do, each ``(config, seed, run_dir)``, and
a function that does one run (:func:`~.runs.run_one` with the ablation's
shared settings bound); it returns each run's :class:`~.records.RunResult`.
The run writes its ``result.json`` itself wherever it runs, so the report,
and the skipping of finished runs on restart, are the same for every
launcher.
"""
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .records import RunResult, error_line

Job = Tuple[str, int, Path]  # config, seed, run dir
RunFn = Callable[..., RunResult]  # run(config, run_dir, seed, env=...)


def visible_gpus(env: dict) -> List[str]:
    """The GPU ids runs may use: ``CUDA_VISIBLE_DEVICES`` of ``env`` when
    set (empty: none), otherwise every GPU torch sees."""
    if 'CUDA_VISIBLE_DEVICES' in env:
        return [g for g in env['CUDA_VISIBLE_DEVICES'].split(',') if g]
    import torch
    return [str(i) for i in range(torch.cuda.device_count())]


class LocalLauncher:
    """Runs on this machine: one after another, or ``parallel`` at a time.

    Side by side, each run gets an equal share of the CPU cores
    (``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` = cores // parallel, at
    least 1) and, when there are GPUs, one of them
    (``CUDA_VISIBLE_DEVICES``; with fewer GPUs than runs, runs share them in
    turn).

    Args:
        parallel (int): runs at a time. Defaults to 1 (one after another,
            in the processes' environment as given).
        cpu_count (int, optional): cores to share. Defaults to
            ``os.cpu_count()``.
        gpus (Sequence[str], optional): GPU ids to hand out. Defaults to
            :func:`visible_gpus`.
    """

    def __init__(self, parallel: int = 1, *, cpu_count: Optional[int] = None,
                 gpus: Optional[Sequence[str]] = None) -> None:
        if parallel < 1:
            raise ValueError(f'parallel must be >= 1, got {parallel}')
        self.parallel = parallel
        self.cpu_count = cpu_count or os.cpu_count() or 1
        self.gpus = None if gpus is None else [str(g) for g in gpus]

    def slot_env(self, slot: int, env: Optional[dict]) -> dict:
        """The environment of the runs in ``slot`` (0 .. parallel - 1)."""
        env = dict(os.environ if env is None else env)
        threads = str(max(1, self.cpu_count // self.parallel))
        env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = threads
        gpus = visible_gpus(env) if self.gpus is None else self.gpus
        if gpus:
            env['CUDA_VISIBLE_DEVICES'] = gpus[slot % len(gpus)]
        return env

    def run(self, jobs: Sequence[Job], run: RunFn, progress,
            env: Optional[dict] = None) -> Dict[Path, RunResult]:
        """Do ``jobs``; report to ``progress`` (a :class:`~.runs.Progress`).
        """
        if self.parallel == 1:
            results = {}
            for index, (config, seed, run_dir) in enumerate(jobs, 1):
                progress.begin(index, Path(config).stem, seed)
                start = time.monotonic()
                results[run_dir] = run(config, run_dir, seed, env=env)
                progress.end(results[run_dir], time.monotonic() - start)
            return results
        slots: queue.Queue = queue.Queue()
        for slot in range(self.parallel):
            slots.put(slot)
        lock = threading.Lock()
        results: Dict[Path, RunResult] = {}

        def one(index: int, job: Job) -> None:
            config, seed, run_dir = job
            slot = slots.get()
            try:
                with lock:
                    progress.begin(index, Path(config).stem, seed)
                start = time.monotonic()
                result = run(config, run_dir, seed,
                             env=self.slot_env(slot, env))
                with lock:
                    results[run_dir] = result
                    progress.end(result, time.monotonic() - start)
            finally:
                slots.put(slot)

        with ThreadPoolExecutor(self.parallel) as pool:
            for future in [pool.submit(one, i, job)
                           for i, job in enumerate(jobs, 1)]:
                future.result()
        return results


class SlurmLauncher:
    """Runs as Slurm jobs, one per (config, seed), submitted with
    ``submitit`` (``pip install fqzoo[cluster]``); this process waits for
    them and writes the report.

    A job runs :func:`~.runs.run_one` on its node, which starts the
    training and test processes there. A job that Slurm ends (time limit,
    preemption, node failure) appears as failed in this report without a
    ``result.json``, so starting the ablation again runs it again, from its
    last checkpoint.

    Args:
        folder (str | Path): submitit's folder (job scripts, logs, pickled
            results).
        partition (str, optional): ``--partition``.
        gpus_per_run (int): GPUs of a job. Defaults to 0.
        cpus_per_run (int): CPU cores of a job. Defaults to 4.
        timeout_min (int): time limit of a job in minutes. Defaults to 240.
        slurm_args (dict, optional): more ``sbatch`` options, e.g.
            ``{'account': 'proj', 'qos': 'normal'}``.
        cluster (str): submitit's cluster: ``'slurm'``, or ``'local'`` to
            run the jobs as local processes (tests). Defaults to 'slurm'.
        poll_s (float): seconds between looks at the jobs. Defaults to 10.
    """

    def __init__(self, folder, *, partition: Optional[str] = None,
                 gpus_per_run: int = 0, cpus_per_run: int = 4,
                 timeout_min: int = 240, slurm_args: Optional[dict] = None,
                 cluster: str = 'slurm', poll_s: float = 10.0) -> None:
        try:
            import submitit
        except ImportError as err:
            raise ImportError('--launcher slurm needs submitit: pip install '
                              '"fqzoo[cluster]"') from err
        self.executor = submitit.AutoExecutor(folder=str(folder),
                                              cluster=cluster)
        params = dict(timeout_min=timeout_min, nodes=1, tasks_per_node=1,
                      cpus_per_task=cpus_per_run, gpus_per_node=gpus_per_run,
                      slurm_additional_parameters=dict(slurm_args or {}))
        if partition:
            params['slurm_partition'] = partition
        self.executor.update_parameters(**params)
        self.poll_s = poll_s

    def run(self, jobs: Sequence[Job], run: RunFn, progress,
            env: Optional[dict] = None) -> Dict[Path, RunResult]:
        """Submit ``jobs``, wait for all of them; report to ``progress``.
        The jobs' processes get ``env`` when given, else the job's own
        environment."""
        import submitit
        submitted, start = {}, time.monotonic()
        for index, (config, seed, run_dir) in enumerate(jobs, 1):
            name = Path(config).stem
            self.executor.update_parameters(name=f'{name}_seed{seed}')
            job = self.executor.submit(run, config, run_dir, seed, env=env)
            progress.begin(index, name, seed)
            progress.log(f'    submitted as job {job.job_id}')
            submitted[job.job_id] = (job, config, seed, run_dir)
        results = {}
        for job in submitit.helpers.as_completed(
                [entry[0] for entry in submitted.values()],
                poll_frequency=self.poll_s):
            _, config, seed, run_dir = submitted[job.job_id]
            try:
                results[run_dir] = job.result()
            except Exception as err:  # the job, not the run, failed
                results[run_dir] = RunResult(
                    config=str(config), name=Path(config).stem, seed=seed,
                    work_dir=str(run_dir),
                    reason=f'job {job.job_id}: {error_line(err)}')
            progress.end(results[run_dir], time.monotonic() - start)
        return results
