"""Train and evaluate several configs under one budget, and compare.

The configs are tokenizers or token generators. Each (config, seed) run
trains in its own process (``tools/train.py``) and is evaluated on the test
split in another (``tools/test.py --out``: reconstruction metrics, or a
generator's held-out NLL), so a crash or a NaN loss in one run cannot take
the others down. A generator config with a ``sample_eval`` entry is then
sampled (``tools/sample.py``) and its samples scored
(``tools/eval_generation.py``) at each guidance scale it lists, each in its
own process too (:func:`sample_eval_spec`). A run's outcome
is written atomically to ``DIR/<config stem>/seed_<s>/result.json`` when it
ends; a run with that file is finished and skipped when the ablation is
started again with the same ``DIR``. The report is ``DIR/ablation.md``,
``DIR/ablation.csv`` (one row per run), ``DIR/ablation_summary.csv`` (one row
per config: mean and std over its successful seeds) and ``DIR/ablation.png``
(validation curves and final test metrics).

Example:
    >>> results = run_ablation(['configs/ablation/vq.py',
    ...                         'configs/ablation/fq2.py'],
    ...                        'work_dirs/ablation', max_iters=1000,
    ...                        seeds=[0, 1])
    >>> write_report(results, 'work_dirs/ablation')
"""
import copy
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, TextIO, Tuple

import numpy as np
from matplotlib.figure import Figure
from mmengine.config import Config
from mmengine.registry import init_default_scope

from fqzoo.registry import MODELS

REPO = Path(__file__).resolve().parents[2]
TRAIN_TOOL = REPO / 'tools' / 'train.py'
TEST_TOOL = REPO / 'tools' / 'test.py'
SAMPLE_TOOL = REPO / 'tools' / 'sample.py'
EVAL_TOOL = REPO / 'tools' / 'eval_generation.py'
RESULT_FILE = 'result.json'
# Parts of the trained model that a tokenizer does not need at inference:
# they are not counted in ``params``.
TRAINING_ONLY = ('discriminator', 'perceptual_loss', 'regularizers')
# Sampling speeds from ``sampling.json`` kept per guidance scale.
SAMPLING_TIMINGS = ('images_per_s', 'tokens_per_s')
# Generation metrics (``tools/eval_generation.py``'s keys) that get table
# columns, per guidance scale, in this order.
GENERATION_COLUMNS = ('fmnist_class_accuracy', 'fid_fmnist_classifier',
                      'gfid', 'is', 'precision', 'recall',
                      'fid_effnet_offline')


@dataclass
class RunResult:
    """The outcome of one (config, seed) run, as stored in ``result.json``.

    Args:
        config (str): config file path.
        name (str): config stem, the run's name in the report.
        seed (int): ``randomness.seed`` of the run.
        status (str): ``'ok'`` or ``'failed'``.
        reason (str): why a failed run failed (its last error line).
        metrics (dict): test metrics (``tools/test.py --out``), then a
            generator's sampling and generation metrics as
            ``<key>@cfg<scale>``.
        model (str): a tokenizer's quantizer type, with the sub-quantizer's
            type in brackets for quantizers built from one (FQ, RVQ); a
            generator's head type.
        codebook_sizes (list[int]): codes per sub-token, one entry per
            sub-token (G of them: the index tuple length).
        bits_per_token (float): ``sum(log2(V_g))``, the bits of one index
            tuple.
        grid (str): a generator's token grid ``'hxw'``; empty for
            tokenizers (theirs depends on the image size).
        params (int): parameters of the inference tokenizer (encoder, heads,
            quantizer, decoder; not the discriminator, perceptual loss or
            regularizers with their teachers), or of the whole generator.
        train_time_s (float): wall time of training, seconds.
        eval_time_s (float): wall time of the test run (and of sampling
            and scoring samples), seconds.
        max_iters (int): iterations trained.
        work_dir (str): the run's work dir.
        checkpoint (str): the evaluated checkpoint.
    """

    config: str
    name: str
    seed: int
    status: str = 'failed'
    reason: str = ''
    metrics: Dict[str, float] = field(default_factory=dict)
    model: str = ''
    codebook_sizes: List[int] = field(default_factory=list)
    bits_per_token: float = 0.0
    grid: str = ''
    params: int = 0
    train_time_s: float = 0.0
    eval_time_s: float = 0.0
    max_iters: int = 0
    work_dir: str = ''
    checkpoint: str = ''

    @property
    def ok(self) -> bool:
        return self.status == 'ok'


# ----------------------------------------------------------------- configs
def apply_budget(cfg: Config, *, max_iters: Optional[int] = None,
                 seed: Optional[int] = None) -> Config:
    """Set the shared training budget and the seed on ``cfg`` (in place).

    ``max_iters`` sets ``train_cfg.max_iters`` and clips what would exceed
    it: ``train_cfg.val_interval`` and the ``end`` / ``T_max`` of every
    parameter scheduler; the checkpoint hook saves the last iteration.
    ``seed`` sets ``randomness.seed``.

    Returns:
        Config: ``cfg``.
    """
    if max_iters is not None:
        cfg.train_cfg.max_iters = max_iters
        if cfg.train_cfg.get('val_interval', 0) > max_iters:
            cfg.train_cfg.val_interval = max_iters
        schedulers = cfg.get('param_scheduler') or []
        if isinstance(schedulers, dict):
            schedulers = [schedulers]
        for scheduler in schedulers:
            for key in ('end', 'T_max'):
                if scheduler.get(key, 0) > max_iters:
                    scheduler[key] = max_iters
        checkpoint = cfg.get('default_hooks', {}).get('checkpoint')
        if checkpoint is not None:
            checkpoint.save_last = True
    if seed is not None:
        cfg.setdefault('randomness', {})['seed'] = seed
    return cfg


def describe_model(cfg: Config) -> dict:
    """The :class:`RunResult` fields that describe the model ``cfg.model``
    builds: ``model``, ``codebook_sizes``, ``bits_per_token``, ``grid`` and
    ``params``.

    The built model says what it is: a tokenizer has a ``quantizer`` (it is
    built without its training-only parts, :data:`TRAINING_ONLY`, so no
    teacher weights are needed); a token generator has a ``head``, its
    ``codebook_sizes`` and ``grid_size``.
    """
    init_default_scope(cfg.get('default_scope', 'fqzoo'))
    model_cfg = copy.deepcopy(cfg.model)
    for key in TRAINING_ONLY:
        model_cfg.pop(key, None)
    model = MODELS.build(model_cfg)
    if hasattr(model, 'quantizer'):
        quantizer = model.quantizer
        name = type(quantizer).__name__
        inner = cfg.model.quantizer.get('quantizer')
        if isinstance(inner, dict) and 'type' in inner:
            name = f'{name}({inner["type"]})'
        sizes = [int(quantizer.codebook_size)] * int(quantizer.num_codebooks)
        grid = ''
    else:
        name = type(model.head).__name__
        sizes = [int(v) for v in model.codebook_sizes]
        grid = 'x'.join(map(str, model.grid_size))
    return dict(model=name, codebook_sizes=sizes, grid=grid,
                bits_per_token=sum(math.log2(v) for v in sizes),
                params=sum(p.numel() for p in model.parameters()))


def sample_eval_spec(cfg: Config) -> Optional[dict]:
    """The config's ``sample_eval`` entry, checked and completed, or None.

    ``sample_eval = dict(tokenizer=(CONFIG, CHECKPOINT), num=N,
    cfg_scale=[1.0, 3.0], batch_size=B, sample_args=[...],
    eval_args=[...])``: after testing, a generator run draws ``num``
    class-balanced samples at each guidance scale with ``tools/sample.py``
    (``batch_size`` defaults to 32; ``sample_args`` are more of its
    options) and, when ``eval_args`` are given, scores them with
    ``tools/eval_generation.py`` and those arguments (e.g. ``['--metrics',
    '--fmnist-classifier']``). Relative paths are from the repository root.

    Raises:
        ValueError: an unknown key, or a tokenizer that is not a
            ``(config, checkpoint)`` pair.
        FileNotFoundError: a tokenizer file is missing.
    """
    spec = cfg.get('sample_eval')
    if not spec:
        return None
    known = {'tokenizer', 'num', 'cfg_scale', 'batch_size', 'sample_args',
             'eval_args'}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValueError(f'sample_eval: unknown keys {unknown}, known: '
                         f'{sorted(known)}')
    tokenizer = [str(path) for path in spec['tokenizer']]
    if len(tokenizer) != 2:
        raise ValueError(f'sample_eval: tokenizer must be (config, '
                         f'checkpoint), got {spec["tokenizer"]}')
    for path in tokenizer:
        if not (REPO / path).is_file():
            raise FileNotFoundError(f'sample_eval: {path} not found')
    scales = spec.get('cfg_scale', 1.0)
    if not isinstance(scales, (list, tuple)):
        scales = [scales]
    return dict(tokenizer=tokenizer, num=int(spec['num']),
                cfg_scale=[float(s) for s in scales],
                batch_size=int(spec.get('batch_size', 32)),
                sample_args=[str(a) for a in spec.get('sample_args') or []],
                eval_args=[str(a) for a in spec.get('eval_args') or []])


# ------------------------------------------------------------ run outputs
def read_scalars(work_dir: Path) -> Tuple[List[dict], List[dict]]:
    """Training and validation records of a run's MMEngine logs.

    Reads every ``work_dir/<timestamp>/vis_data/scalars.json`` (a resumed
    run has several) in time order. Validation records carry no iteration
    (MMEngine logs them by epoch); each gets ``iter``, the iteration of the
    training record before it. A later record of the same iteration replaces
    an earlier one.

    Returns:
        tuple[list[dict], list[dict]]: training and validation records,
        each with an ``iter`` key, sorted by it.
    """
    train: Dict[int, dict] = {}
    val: Dict[int, dict] = {}
    for path in sorted(Path(work_dir).glob('*/vis_data/scalars.json')):
        last_iter = 0
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            if 'iter' in record:
                last_iter = int(record['iter'])
                train[last_iter] = record
            else:
                val[last_iter] = dict(record, iter=last_iter)
    return ([train[i] for i in sorted(train)], [val[i] for i in sorted(val)])


def non_finite_loss(train_records: Sequence[dict]) -> Optional[str]:
    """The failure reason when a logged loss is NaN or infinite, else None."""
    for record in train_records:
        for key, value in record.items():
            if ('loss' in key and isinstance(value, (int, float))
                    and not math.isfinite(value)):
                return (f'non-finite {key} ({value}) at iteration '
                        f'{record["iter"]}')
    return None


def last_error_line(log_file: Path) -> str:
    """The last line of a process log that names an error (the exception
    line of a traceback), else its last non-empty line."""
    if not log_file.is_file():
        return ''
    lines = [line.strip() for line in
             log_file.read_text(errors='replace').splitlines() if line.strip()]
    for line in reversed(lines):
        head = line.split(':', 1)[0]
        if head.endswith(('Error', 'Exception', 'Interrupt')) or \
                head.startswith('Traceback'):
            return line[:300]
    return lines[-1][:300] if lines else ''


def error_line(err: Exception, limit: int = 300) -> str:
    """``'Type: message'`` of an exception, first line, at most ``limit``
    characters (a KeyError's message without the quotes repr adds)."""
    message = err.args[0] if isinstance(err, KeyError) and err.args else err
    lines = str(message).splitlines() or ['']
    return f'{type(err).__name__}: {lines[0]}'[:limit]


def write_json_atomic(data: dict, path: Path) -> None:
    """Write ``data`` as JSON through a temporary file and ``os.replace``,
    so ``path`` is either absent or complete."""
    tmp = path.with_name(f'.{path.name}.tmp')
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def load_result(run_dir: Path) -> Optional[RunResult]:
    """The stored result of a finished run, or None."""
    path = Path(run_dir) / RESULT_FILE
    if not path.is_file():
        return None
    return RunResult(**json.loads(path.read_text()))


# --------------------------------------------------------------- one run
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


def _run_process(args: List[str], log_file: Path,
                 env: Optional[dict]) -> Tuple[int, float]:
    """Run ``args`` with stdout and stderr into ``log_file``; returns the
    exit code and the wall time."""
    start = time.monotonic()
    with open(log_file, 'a') as log:
        code = subprocess.call(args, stdout=log, stderr=subprocess.STDOUT,
                               cwd=REPO, env=env)
    return code, time.monotonic() - start


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
    (:func:`sample_eval_spec`, :func:`sample_and_evaluate`). Process output
    goes to ``run_dir/train.log``, ``run_dir/test.log`` and the sampling
    logs. Any failure (config error, crash, NaN loss, no checkpoint,
    non-finite metric) gives a ``'failed'`` result with the reason instead
    of an exception.

    Args:
        config (str): config file path.
        run_dir (Path): the run's work dir (created).
        seed (int): ``randomness.seed``.
        max_iters (int, optional): shared budget, see :func:`apply_budget`.
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
    write_json_atomic(asdict(result), run_dir / RESULT_FILE)
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
    code, result.train_time_s = _run_process(train_args,
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
    code, result.eval_time_s = _run_process(
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


def numeric(metrics: dict) -> Dict[str, float]:
    """The entries of ``metrics`` that are numbers (not per-class dicts)."""
    return {k: v for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def sample_and_evaluate(result: RunResult, run_dir: Path, run_config: Path,
                        spec: dict, env: Optional[dict]) -> str:
    """Sample the trained generator at each guidance scale of ``spec`` and
    score the samples; their metrics go into ``result.metrics``.

    At scale S, ``tools/sample.py`` writes ``run_dir/samples_cfgS/``
    (``samples.npz``, grids, ``sampling.json``; a complete folder is
    reused) and, when ``spec`` has ``eval_args``, ``tools/eval_generation.py``
    writes its ``metrics.json``. The sampling speeds
    (:data:`SAMPLING_TIMINGS`) and every numeric generation metric are
    stored as ``<key>@cfgS``; output goes to ``run_dir/sample_cfgS.log``
    and ``run_dir/eval_cfgS.log``.

    Args:
        result (RunResult): the tested run (``checkpoint`` set); its
            ``metrics`` and ``eval_time_s`` are updated.
        run_dir (Path): the run's work dir.
        run_config (Path): the generator config the run trained.
        spec (dict): from :func:`sample_eval_spec`.
        env (dict, optional): environment of the processes.

    Returns:
        str: why it failed, empty when it did not.
    """
    config, checkpoint = spec['tokenizer']
    for scale in spec['cfg_scale']:
        tag = f'cfg{scale}'
        out = run_dir / f'samples_{tag}'
        log = run_dir / f'sample_{tag}.log'
        code, seconds = _run_process(
            [sys.executable, str(SAMPLE_TOOL), str(run_config),
             result.checkpoint, '--tokenizer', config, checkpoint, '--num',
             str(spec['num']), '--cfg-scale', str(scale), '--batch-size',
             str(spec['batch_size']), '--out', str(out),
             *spec['sample_args']], log, env)
        result.eval_time_s += seconds
        if code != 0:
            return (f'sampling at cfg {scale}: '
                    f'{last_error_line(log) or f"exited with code {code}"}')
        timings = json.loads((out / 'sampling.json').read_text())['timings']
        metrics = {k: timings[k] for k in SAMPLING_TIMINGS}
        if spec['eval_args']:
            log, metrics_file = run_dir / f'eval_{tag}.log', out / 'metrics.json'
            code, seconds = _run_process(
                [sys.executable, str(EVAL_TOOL), str(out / 'samples.npz'),
                 *spec['eval_args'], '--out', str(metrics_file)], log, env)
            result.eval_time_s += seconds
            if code != 0 or not metrics_file.is_file():
                return (f'scoring samples at cfg {scale}: '
                        f'{last_error_line(log) or f"exited with code {code}"}')
            metrics.update(numeric(json.loads(
                metrics_file.read_text())['metrics']))
        result.metrics.update({f'{k}@{tag}': v for k, v in metrics.items()})
    return ''


def run_ablation(configs: Sequence[str], work_dir: str, *,
                 seeds: Sequence[int] = (0,),
                 max_iters: Optional[int] = None,
                 cfg_options: Optional[dict] = None,
                 retry_failed: bool = False,
                 env: Optional[dict] = None,
                 progress: Optional[Callable[[int], Progress]] = None
                 ) -> List[RunResult]:
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
    for index, (config, seed, run_dir) in enumerate(todo, 1):
        report.begin(index, Path(config).stem, seed)
        start = time.monotonic()
        results[run_dir] = run_one(config, run_dir, seed, max_iters=max_iters,
                                   cfg_options=cfg_options, env=env)
        report.end(results[run_dir], time.monotonic() - start)
    return [results[run_dir] for _, _, run_dir in runs]


# ---------------------------------------------------------------- report
def _per_sub(keys: Sequence[str], stat: str) -> List[str]:
    """``stat_0``, ``stat_1``, ... of ``keys``, in index order."""
    return sorted((k for k in keys if k.startswith(f'{stat}_')
                   and k[len(stat) + 1:].isdigit()),
                  key=lambda k: int(k.rsplit('_', 1)[1]))


def metric_columns(results: Sequence[RunResult]) -> List[Tuple[str, str]]:
    """``(header, metric key)`` of the table's metric columns, in order.

    Tokenizers: PSNR, SSIM, the perceptual distance and FID under their
    keys, usage and perplexity per sub-codebook. Generators: held-out
    ``nll`` (and ``nll_g`` per sub-token when there are several),
    ``bits_per_position``, then per guidance scale the generation metrics
    of :data:`GENERATION_COLUMNS` (``<key>@cfg<scale>``)."""
    keys = sorted({k for r in results for k in r.metrics})
    plain = [k for k in keys if '@' not in k]
    columns = [(name.upper(), name) for name in ('psnr', 'ssim')
               if name in plain]
    columns += [(key, key) for key in plain
                if 'perceptual' in key or key.startswith('lpips')]
    columns += [(key, key) for key in plain if key.startswith('fid')]
    nll_g = _per_sub(plain, 'nll')
    nll_g = nll_g if len(nll_g) > 1 else []   # nll_0 is nll when G = 1
    columns += [(k, k) for k in ['nll', *nll_g, 'bits_per_position']
                if k in plain]
    for stat in ('usage', 'perplexity'):
        per_sub = _per_sub(plain, stat)
        columns += [(k, k) for k in per_sub or [k for k in plain if k == stat]]
    scales = sorted({k.split('@cfg', 1)[1] for k in keys if '@cfg' in k},
                    key=float)
    for scale in scales:
        columns += [(key, key) for key in (f'{name}@cfg{scale}' for name in
                                           GENERATION_COLUMNS) if key in keys]
    return columns


def tokens_text(sizes: Sequence[int]) -> str:
    """``'V x G'`` when the G sub-tokens share one size, else their sizes
    (``'(16, 12)'``); ``'-'`` for none."""
    if not sizes:
        return '-'
    if len(set(sizes)) == 1:
        return f'{sizes[0]} x {len(sizes)}'
    return f'({", ".join(map(str, sizes))})'


DESCRIPTION_FIELDS = ['model', 'tokens', 'num_codebooks', 'bits_per_token',
                      'grid', 'params']


def description(result: RunResult) -> dict:
    """The :data:`DESCRIPTION_FIELDS` of a run, as the report shows them."""
    return dict(model=result.model, tokens=tokens_text(result.codebook_sizes),
                num_codebooks=len(result.codebook_sizes),
                bits_per_token=result.bits_per_token, grid=result.grid,
                params=result.params)


def aggregate(results: Sequence[RunResult]) -> List[dict]:
    """Per config (in first-seen order): ``name``, ``runs``, ``ok``, the
    model description of its first successful run, and for every numeric
    metric plus ``train_time_s`` the ``mean`` and ``std`` (sample std, 0
    for one run) over its successful runs."""
    groups: Dict[str, List[RunResult]] = {}
    for result in results:
        groups.setdefault(result.name, []).append(result)
    rows = []
    for name, runs in groups.items():
        good = [r for r in runs if r.ok]
        first = (good or runs)[0]
        row = dict(name=name, config=first.config, runs=len(runs),
                   ok=len(good), **description(first),
                   reasons=[f'seed {r.seed}: {r.reason}' for r in runs
                            if not r.ok])
        keys = sorted({k for r in good for k in r.metrics}) + ['train_time_s']
        for key in keys:
            values = np.array([r.metrics.get(key, np.nan) if key != 'train_time_s'
                               else r.train_time_s for r in good], float)
            values = values[np.isfinite(values)]
            if len(values):
                row[f'{key}_mean'] = float(values.mean())
                row[f'{key}_std'] = float(values.std(ddof=1)) \
                    if len(values) > 1 else 0.0
        rows.append(row)
    return rows


def _fmt(value: float, digits: int = 3) -> str:
    if abs(value) >= 1000:
        return f'{value:.0f}'
    return f'{value:.{digits}f}'


def _cell(row: dict, key: str, several: bool, digits: int = 3) -> str:
    if f'{key}_mean' not in row:
        return '-'
    text = _fmt(row[f'{key}_mean'], digits)
    if several and row['ok'] > 1:
        text += f' ± {_fmt(row[f"{key}_std"], digits)}'
    return text


def markdown_table(results: Sequence[RunResult]) -> str:
    """The comparison table: one row per config (mean ± std over seeds when
    there are several), failed runs listed under it with their reasons."""
    rows = aggregate(results)
    columns = metric_columns(results)
    several = any(row['runs'] > 1 for row in rows)
    grids = any(row['grid'] for row in rows)
    header = ['config', 'model', 'tokens (V x G)', 'bits/token'] + \
        ['grid'] * grids + [title for title, _ in columns] + \
        ['train time (s)', 'params (M)', 'runs ok']
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '---|' * len(header)]
    for row in rows:
        bits = f'{row["bits_per_token"]:.1f}' if row['num_codebooks'] \
            else '-'
        cells = [row['name'], row['model'] or '-', row['tokens'], bits]
        cells += [row['grid'] or '-'] * grids
        cells += [_cell(row, key, several) for _, key in columns]
        cells += [_cell(row, 'train_time_s', several, 0),
                  f'{row["params"] / 1e6:.2f}' if row['params'] else '-',
                  f'{row["ok"]}/{row["runs"]}'
                  + ('' if row['ok'] == row['runs'] else ' (failed)')]
        lines.append('| ' + ' | '.join(cells) + ' |')
    failures = [f'- {row["name"]}, {reason}' for row in rows
                for reason in row['reasons']]
    if failures:
        lines += ['', 'Failed runs:', ''] + failures
    return '\n'.join(lines)


RUN_FIELDS = ['name', 'config', 'seed', 'status', 'reason',
              *DESCRIPTION_FIELDS, 'train_time_s', 'eval_time_s', 'max_iters',
              'work_dir', 'checkpoint']


def write_csvs(results: Sequence[RunResult], work_dir: Path) -> None:
    """``ablation.csv`` (one row per run, its metrics as columns) and
    ``ablation_summary.csv`` (one row per config, ``<metric>_mean`` and
    ``<metric>_std`` columns)."""
    keys = sorted({k for r in results for k in r.metrics})
    with open(work_dir / 'ablation.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, RUN_FIELDS + keys)
        writer.writeheader()
        for result in results:
            row = {k: v for k, v in asdict(result).items() if k in RUN_FIELDS}
            writer.writerow({**row, **description(result), **result.metrics})
    rows = aggregate(results)
    stats = sorted({k for row in rows for k in row
                    if k.endswith(('_mean', '_std'))})
    fields = ['name', 'config', 'runs', 'ok', *DESCRIPTION_FIELDS] + stats
    with open(work_dir / 'ablation_summary.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, fields, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)


def plot_ablation(results: Sequence[RunResult], path: Path) -> Path:
    """Validation curves (metric vs iteration, one colour per config, one
    line per seed) on the top row and the final test metrics (bars, std as
    error bars) on the bottom row, one column per metric."""
    rows = aggregate(results)
    keys = [key for _, key in metric_columns(results)]
    curves = {r.work_dir: read_scalars(Path(r.work_dir))[1] for r in results
              if r.work_dir}
    curve_keys = {k for recs in curves.values() for rec in recs for k in rec}
    keys = [k for k in keys if k in curve_keys or
            any(f'{k}_mean' in row for row in rows)] or ['psnr']
    fig = Figure(figsize=(3.6 * len(keys), 6.4), layout='constrained')
    axes = fig.subplots(2, len(keys), squeeze=False)
    colours = {row['name']: f'C{i % 10}' for i, row in enumerate(rows)}
    for col, key in enumerate(keys):
        ax = axes[0, col]
        for result in results:
            points = [(rec['iter'], rec[key]) for rec in
                      curves.get(result.work_dir, []) if key in rec]
            if points:
                its, values = zip(*points)
                label = result.name if result.seed == min(
                    r.seed for r in results if r.name == result.name) else None
                ax.plot(its, values, marker='.', color=colours[result.name],
                        label=label)
        ax.set(title=f'val {key}', xlabel='iteration')
        ax.set_visible(ax.has_data())   # not for test-only metrics
        ax = axes[1, col]
        names = [row['name'] for row in rows]
        means = [row.get(f'{key}_mean', np.nan) for row in rows]
        stds = [row.get(f'{key}_std', 0.0) for row in rows]
        ax.bar(range(len(rows)), means, yerr=stds, capsize=3,
               color=[colours[n] for n in names])
        ax.set_xticks(range(len(rows)), names, rotation=30, ha='right')
        ax.set(title=f'test {key}')
    if axes[0, 0].get_legend_handles_labels()[0]:
        axes[0, 0].legend(fontsize='small')
    fig.savefig(path, dpi=100)
    return path


def write_report(results: Sequence[RunResult], work_dir: str) -> Dict[str, Path]:
    """Write ``ablation.md``, ``ablation.csv``, ``ablation_summary.csv`` and
    ``ablation.png`` into ``work_dir``.

    Returns:
        dict[str, Path]: the files written, by kind (``md``, ``csv``,
        ``summary_csv``, ``png``).
    """
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    budgets = sorted({r.max_iters for r in results if r.max_iters})
    seeds = sorted({r.seed for r in results})
    text = ['# Ablation', '',
            f'{len(results)} runs: {len({r.name for r in results})} configs '
            f'x seeds {seeds}; training iterations: '
            f'{", ".join(map(str, budgets)) or "-"}. Metrics on the test '
            'split; mean ± std over successful seeds.', '',
            markdown_table(results), '',
            'Per-run values: `ablation.csv`; per-config means and stds: '
            '`ablation_summary.csv`; curves and bars: `ablation.png`.', '']
    files = dict(md=work_dir / 'ablation.md', csv=work_dir / 'ablation.csv',
                 summary_csv=work_dir / 'ablation_summary.csv',
                 png=work_dir / 'ablation.png')
    files['md'].write_text('\n'.join(text))
    write_csvs(results, work_dir)
    plot_ablation(results, files['png'])
    return files
