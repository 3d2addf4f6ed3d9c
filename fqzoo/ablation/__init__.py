"""Train and evaluate several configs under one budget, and compare.

The configs are tokenizers or token generators. Each (config, seed) run
trains in its own process (``tools/train.py``) and is evaluated on the test
split in another (``tools/test.py --out``: reconstruction metrics, or a
generator's held-out NLL), so a crash or a NaN loss in one run cannot take
the others down. A generator config with a ``sample_eval`` entry is then
sampled (``tools/sample.py``) and its samples scored
(``tools/eval_generation.py``) at each guidance scale it lists, each in its
own process too (:mod:`.sample_eval`). A run's outcome is written
atomically to ``DIR/<config stem>/seed_<s>/result.json`` when it ends; a
run with that file is finished and skipped when the ablation is started
again with the same ``DIR``. The report is ``DIR/ablation.md``,
``DIR/ablation.csv`` (one row per run), ``DIR/ablation_summary.csv`` (one row
per config: mean and std over its successful seeds) and ``DIR/ablation.png``
(validation curves and final test metrics).

Example:
    >>> results = run_ablation(['configs/ablation/vq.py',
    ...                         'configs/ablation/fq2.py'],
    ...                        'work_dirs/ablation', max_iters=1000,
    ...                        seeds=[0, 1])
    >>> write_report(results, 'work_dirs/ablation')

Modules, by concern:

- :mod:`.records`: :class:`~.records.RunResult` (``result.json``) and what
  a run's processes leave behind (MMEngine scalars, logs);
- :mod:`.describe`: a config under the shared budget, the model it builds;
- :mod:`.process`: the tool processes, started from the repository root;
- :mod:`.sample_eval`: a generator run's sampling and scoring;
- :mod:`.runs`: every (config, seed) run (:func:`~.runs.run_ablation`);
- :mod:`.launchers`: where the runs run: here, one after another or side by
  side (:class:`~.launchers.LocalLauncher`), or as Slurm jobs
  (:class:`~.launchers.SlurmLauncher`);
- :mod:`.report`: the table, the CSV files and the plot
  (:func:`~.report.write_report`).
"""
from .describe import apply_budget, describe_model
from .launchers import LocalLauncher, SlurmLauncher
from .records import (
                      RunResult,
                      last_error_line,
                      load_result,
                      non_finite_loss,
                      read_scalars,
)
from .report import (
                      aggregate,
                      markdown_table,
                      metric_columns,
                      plot_ablation,
                      write_csvs,
                      write_report,
)
from .runs import Progress, run_ablation, run_one
from .sample_eval import sample_and_evaluate, sample_eval_spec

__all__ = [
    'LocalLauncher', 'Progress', 'RunResult', 'SlurmLauncher', 'aggregate',
    'apply_budget', 'describe_model', 'last_error_line', 'load_result',
    'markdown_table', 'metric_columns', 'non_finite_loss', 'plot_ablation',
    'read_scalars', 'run_ablation', 'run_one', 'sample_and_evaluate',
    'sample_eval_spec', 'write_csvs', 'write_report'
]
