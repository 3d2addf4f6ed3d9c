"""Runs: every (config, seed) trained and tested in its own processes,
with its outcome stored in its run dir; finished runs are skipped."""
import json
import math
import shutil
import sys
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, TextIO

from mmengine.config import Config

from fqzoo.utils.files import write_json_atomic

from .describe import apply_budget, describe_model
from .launchers import LocalLauncher
from .process import TEST_TOOL, TRAIN_TOOL, run_process
from .records import (
    RESULT_FILE,
    RunResult,
    error_line,
    last_error_line,
    load_result,
    non_finite_loss,
    numeric,
    read_scalars,
)
from .sample_eval import sample_and_evaluate, sample_eval_spec


class Progress:
    """Progress across runs: ``[i/n] name seed=s | elapsed | ETA`` lines.

    Args:
        total (int): runs to do in this invocation.
        stream (TextIO): where lines go. Defaults to ``sys.stdout``.
    """

    def __init__(self, total: int, stream: Optional[TextIO] = None) -> None:
        self.total = total
        self.stream = stream or sys.stdout
        self.start = time.monotonic()
        self.durations: List[float] = []

    @staticmethod
    def clock(seconds: float) -> str:
        seconds = int(round(seconds))
        return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'

    def eta(self) -> str:
        if not self.durations:
            return '?'
        left = self.total - len(self.durations)
        return self.clock(left * sum(self.durations) / len(self.durations))

    def log(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def begin(self, index: int, name: str, seed: int) -> None:
        self.log(f'[{index}/{self.total}] {name} seed={seed} | elapsed '
                 f'{self.clock(time.monotonic() - self.start)} | ETA '
                 f'{self.eta()}')

    def end(self, result: RunResult, seconds: float) -> None:
        self.durations.append(seconds)
        outcome = 'ok' if result.ok else f'FAILED: {result.reason}'
        self.log(f'    {result.name} seed={result.seed}: {outcome} '
                 f'({self.clock(seconds)})')



def run_one(config: str, run_dir: Path, seed: int, *,
            max_iters: Optional[int] = None,
            cfg_options: Optional[dict] = None,
            env: Optional[dict] = None) -> RunResult:
    """Train and test one config with one seed in ``run_dir``.

    The config with the shared overrides is written to
    ``run_dir/config.py``; training runs ``tools/train.py`` on it (resuming
    from ``run_dir/last_checkpoint`` when an interrupted run left one),
    testing ``tools/test.py --out run_dir/metrics.json``; a config with a
    ``sample_eval`` entry is then sampled and scored at each guidance scale
    (:mod:`.sample_eval`). Process output goes to ``run_dir/train.log``,
    ``run_dir/test.log`` and the sampling logs. Any failure (config error,
    crash, NaN loss, no checkpoint, non-finite metric) gives a ``'failed'``
    result with the reason instead of an exception.

    Args:
        config (str): config file path.
        run_dir (Path): the run's work dir (created).
        seed (int): ``randomness.seed``.
        max_iters (int, optional): shared budget, see
            :func:`~.describe.apply_budget`.
        cfg_options (dict, optional): shared config overrides, applied first.
        env (dict, optional): environment of the processes. Defaults to this
            process's.

    Returns:
        RunResult: also written to ``run_dir/result.json``.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    result = RunResult(config=str(config), name=Path(config).stem, seed=seed,
                       work_dir=str(run_dir))
    try:
        result = _train_and_test(result, run_dir, max_iters, cfg_options,
                                 env)
    except Exception as err:  # a broken config must not stop the ablation
        result.status = 'failed'
        result.reason = error_line(err)
    write_json_atomic(run_dir / RESULT_FILE, asdict(result))
    return result


def _train_and_test(result: RunResult, run_dir: Path,
                    max_iters: Optional[int], cfg_options: Optional[dict],
                    env: Optional[dict]) -> RunResult:
    cfg = Config.fromfile(result.config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    apply_budget(cfg, max_iters=max_iters, seed=result.seed)
    cfg.work_dir = str(run_dir)
    result.max_iters = int(cfg.train_cfg.max_iters)
    result.__dict__.update(describe_model(cfg))
    sample_eval = sample_eval_spec(cfg)
    run_config = run_dir / 'config.py'
    cfg.dump(str(run_config))

    train_args = [sys.executable, str(TRAIN_TOOL), str(run_config),
                  '--work-dir', str(run_dir)]
    if (run_dir / 'last_checkpoint').is_file():
        train_args.append('--resume')
    code, result.train_time_s = run_process(train_args,
                                            run_dir / 'train.log', env)
    if code != 0:
        result.reason = (last_error_line(run_dir / 'train.log')
                         or f'training exited with code {code}')
        return result
    reason = non_finite_loss(read_scalars(run_dir)[0])
    if reason:
        result.reason = reason
        return result
    last = run_dir / 'last_checkpoint'
    if not last.is_file():
        result.reason = 'training wrote no checkpoint'
        return result
    result.checkpoint = last.read_text().strip()

    metrics_file = run_dir / 'metrics.json'
    code, result.eval_time_s = run_process(
        [sys.executable, str(TEST_TOOL), str(run_config), result.checkpoint,
         '--work-dir', str(run_dir / 'test'), '--out', str(metrics_file)],
        run_dir / 'test.log', env)
    if code != 0 or not metrics_file.is_file():
        result.reason = (last_error_line(run_dir / 'test.log')
                         or f'testing exited with code {code}')
        return result
    result.metrics = numeric(json.loads(metrics_file.read_text()))
    if sample_eval:
        result.reason = sample_and_evaluate(result, run_dir, run_config,
                                            sample_eval, env)
        if result.reason:
            return result
    bad = [k for k, v in result.metrics.items() if not math.isfinite(v)]
    if bad:
        result.reason = f'non-finite metrics: {", ".join(bad)}'
        return result
    result.status = 'ok'
    return result



def run_ablation(configs: Sequence[str], work_dir: str, *,
                 seeds: Sequence[int] = (0,),
                 max_iters: Optional[int] = None,
                 cfg_options: Optional[dict] = None,
                 retry_failed: bool = False,
                 env: Optional[dict] = None,
                 progress: Optional[Callable[[int], Progress]] = None,
                 launcher=None) -> List[RunResult]:
    """Run every (config, seed) in ``work_dir/<config stem>/seed_<s>/``.

    Runs with a ``result.json`` are finished and not run again (failed ones
    are when ``retry_failed``: one whose training failed starts from an
    empty run dir; one that failed before or after training keeps its
    checkpoints, so a trained run is only evaluated again). A run that was
    interrupted resumes from its last checkpoint.

    Args:
        configs (Sequence[str]): config files; their stems must differ.
        work_dir (str): the ablation's folder.
        seeds (Sequence[int]): seeds each config is trained with.
            Defaults to (0,).
        max_iters (int, optional): training iterations of every run.
            Defaults to each config's own.
        cfg_options (dict, optional): overrides applied to every config.
        retry_failed (bool): run failed runs again. Defaults to False.
        env (dict, optional): environment of the training and test
            processes. Defaults to this process's.
        progress (callable, optional): ``progress(total)`` returns the
            :class:`Progress` to report to. Defaults to :class:`Progress`.
        launcher (optional): where the runs run, a
            :class:`~.launchers.LocalLauncher` (several side by side) or a
            :class:`~.launchers.SlurmLauncher`. Defaults to
            ``LocalLauncher()``: here, one after another.

    Returns:
        list[RunResult]: one per (config, seed), in order.
    """
    stems = [Path(c).stem for c in configs]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise ValueError(f'config names must differ, repeated: {duplicates}')
    runs = [(config, seed, Path(work_dir) / Path(config).stem / f'seed_{seed}')
            for config in configs for seed in seeds]
    results: Dict[Path, RunResult] = {}
    todo = []
    for config, seed, run_dir in runs:
        done = load_result(run_dir)
        if done is not None and (done.ok or not retry_failed):
            results[run_dir] = done
        else:
            if done is not None and done.train_time_s and \
                    not done.checkpoint:
                shutil.rmtree(run_dir)
            elif done is not None:
                (run_dir / RESULT_FILE).unlink()
            todo.append((config, seed, run_dir))
    report = (progress or Progress)(len(todo))
    if len(results):
        report.log(f'{len(results)} of {len(runs)} runs already finished in '
                   f'{work_dir}: skipped')
    run = partial(run_one, max_iters=max_iters, cfg_options=cfg_options)
    results.update((launcher or LocalLauncher()).run(todo, run, report, env))
    return [results[run_dir] for _, _, run_dir in runs]

