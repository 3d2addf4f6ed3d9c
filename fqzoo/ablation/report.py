"""The ablation's report: ``ablation.md`` (a table, one row per config),
``ablation.csv``, ``ablation_summary.csv`` and ``ablation.png``."""
import csv
from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
from matplotlib.figure import Figure

from .records import RunResult, read_scalars

# Generation metrics (``tools/eval_generation.py``'s keys) that get table
# columns, per guidance scale, in this order.
GENERATION_COLUMNS = ('fmnist_class_accuracy', 'fid_fmnist_classifier',
                      'gfid', 'is', 'precision', 'recall',
                      'fid_effnet_offline')


def _per_sub(keys: Sequence[str], stat: str) -> List[str]:
    """``stat_0``, ``stat_1``, ... of ``keys``, in index order."""
    return sorted((k for k in keys if k.startswith(f'{stat}_')
                   and k[len(stat) + 1:].isdigit()),
                  key=lambda k: int(k.rsplit('_', 1)[1]))


def metric_columns(results: Sequence[RunResult]) -> List[Tuple[str, str]]:
    """``(header, metric key)`` of the table's metric columns, in order.

    Tokenizers: PSNR, SSIM, the perceptual distance and FID under their
    keys, a classifier's agreement (``*_agreement``), usage and perplexity
    per sub-codebook. Generators: held-out
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
    columns += [(key, key) for key in plain if key.endswith('_agreement')]
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
    error bars) on the bottom row, one column per metric; the bars alone
    when no run logged validation."""
    rows = aggregate(results)
    keys = [key for _, key in metric_columns(results)]
    curves = {r.work_dir: read_scalars(Path(r.work_dir))[1] for r in results
              if r.work_dir}
    curve_keys = {k for recs in curves.values() for rec in recs for k in rec}
    keys = [k for k in keys if k in curve_keys or
            any(f'{k}_mean' in row for row in rows)] or ['psnr']
    with_curves = bool(curve_keys.intersection(keys))
    fig = Figure(figsize=(3.6 * len(keys), 6.4 if with_curves else 3.4),
                 layout='constrained')
    axes = fig.subplots(2 if with_curves else 1, len(keys), squeeze=False)
    colours = {row['name']: f'C{i % 10}' for i, row in enumerate(rows)}
    for col, key in enumerate(keys):
        if with_curves:
            _plot_curves(axes[0, col], key, results, curves, colours)
        ax = axes[-1, col]
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


def _plot_curves(ax, key: str, results: Sequence[RunResult],
                 curves: Dict[str, List[dict]], colours: Dict[str, str]
                 ) -> None:
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
