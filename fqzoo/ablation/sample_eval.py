"""A generator run's ``sample_eval``: sampling (``tools/sample.py``) and
scoring the samples (``tools/eval_generation.py``) per guidance scale."""
import json
import sys
from pathlib import Path
from typing import Optional

from mmengine.config import Config

from .process import EVAL_TOOL, REPO, SAMPLE_TOOL, run_process
from .records import RunResult, last_error_line, numeric

# Sampling speeds from ``sampling.json`` kept per guidance scale.
SAMPLING_TIMINGS = ('images_per_s', 'tokens_per_s')


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
        code, seconds = run_process(
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
            code, seconds = run_process(
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

