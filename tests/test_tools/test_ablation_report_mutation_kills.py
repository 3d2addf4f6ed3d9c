"""fqzoo.ablation.report and fqzoo.ablation.describe: the behaviours the
mutation run left unchecked (the column order and its boundaries, the
aggregates by hand, the table, CSV files and report text character by
character, what the plot draws, the budget's clipping and the model
description's parameter count)."""
import csv
import math

import numpy as np
import pytest
from cycler import cycler
from matplotlib import rc_context
from matplotlib.colors import to_rgba
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope
from PIL import Image
from test_ablate import _write_scalars

import fqzoo.ablation.report as report
from fqzoo.ablation import (
    RunResult,
    aggregate,
    apply_budget,
    describe_model,
    markdown_table,
    metric_columns,
    plot_ablation,
    write_csvs,
    write_report,
)
from fqzoo.ablation.describe import TRAINING_ONLY
from fqzoo.ablation.report import _cell, _fmt, _per_sub, description
from fqzoo.registry import MODELS


def run(name: str, seed: int = 0, status: str = 'ok', **kwargs) -> RunResult:
    return RunResult(config=f'{name}.py', name=name, seed=seed, status=status,
                     **kwargs)


def vq(name: str, seed: int, psnr: float, usage: float, train: float,
       **kwargs) -> RunResult:
    """A successful run of a VQ over 2 x 16 codes."""
    return run(name, seed, metrics=dict(psnr=psnr, usage=usage), model='VQ',
               codebook_sizes=[16, 16], bits_per_token=8.0,
               params=1_234_567, train_time_s=train, max_iters=100, **kwargs)


# ------------------------------------------------------------ the columns
def test_per_sub_takes_digit_suffixes_in_numeric_order():
    keys = ['usage_10', 'usage_2', 'usage', 'usage_x', 'usage_1',
            'xusage_3', 'perplexity_0', 'usage_1a']
    assert _per_sub(keys, 'usage') == ['usage_1', 'usage_2', 'usage_10']
    # a stat with an underscore: the index is after the last one
    assert _per_sub(['top_k_10', 'top_k_2', 'top_k'], 'top_k') == [
        'top_k_2', 'top_k_10']
    assert _per_sub(['usage'], 'usage') == []


def test_columns_in_order_with_their_headers():
    metrics = {'usage_1': 0.9, 'usage_0': 1.0, 'perplexity': 30.0,
               'lpips': 0.1, 'effnet_perceptual': 0.2, 'fid': 4.0,
               'fid_x': 5.0, 'ssim': 0.8, 'psnr': 20.0, 'x_agreement': 0.7,
               'agreement_x': 0.6, 'other': 1.0, 'x@y': 2.0,
               'bits_per_position': 5.0, 'nll': 3.0, 'nll_0': 3.5}
    assert metric_columns([run('a', metrics=metrics)]) == [
        ('PSNR', 'psnr'), ('SSIM', 'ssim'),
        ('effnet_perceptual', 'effnet_perceptual'), ('lpips', 'lpips'),
        ('fid', 'fid'), ('fid_x', 'fid_x'), ('x_agreement', 'x_agreement'),
        ('nll', 'nll'), ('bits_per_position', 'bits_per_position'),
        ('usage_0', 'usage_0'), ('usage_1', 'usage_1'),
        ('perplexity', 'perplexity')]


def test_nll_per_sub_token_only_from_two_sub_tokens():
    one = dict(nll=2.0, nll_0=2.0)
    two = dict(nll=2.0, nll_0=2.5, nll_1=1.5, usage=0.5)
    assert [k for _, k in metric_columns([run('a', metrics=one)])] == ['nll']
    assert [k for _, k in metric_columns([run('a', metrics=two)])] == [
        'nll', 'nll_0', 'nll_1', 'usage']
    # keys of every run count, failed ones too
    assert [k for _, k in metric_columns(
        [run('a', metrics=one), run('b', status='failed', metrics=dict(
            nll_1=1.0, perplexity_0=3.0))])] == [
        'nll', 'nll_0', 'nll_1', 'perplexity_0']


def test_generation_columns_per_scale_in_numeric_order():
    metrics = {f'{key}@cfg{scale}': 1.0 for scale in ('10.0', '2.0')
               for key in (*report.GENERATION_COLUMNS, 'images_per_s')}
    metrics['nll'] = 1.0
    expected = [('nll', 'nll')] + [
        (f'{key}@cfg{scale}',) * 2 for scale in ('2.0', '10.0')
        for key in ('fmnist_class_accuracy', 'fid_fmnist_classifier', 'gfid',
                    'is', 'precision', 'recall', 'fid_effnet_offline')]
    assert metric_columns([run('a', metrics=metrics)]) == expected
    assert metric_columns([]) == []


def test_a_key_with_two_guidance_scales_is_refused():
    """The scale is all that follows the first ``@cfg``: ``1.0@cfg2.0`` is
    not a number, so the key is refused, not filed under either scale."""
    with pytest.raises(ValueError, match="'1.0@cfg2.0'"):
        metric_columns([run('a', metrics={'gfid@cfg1.0@cfg2.0': 1.0})])


# ------------------------------------------------------ the descriptions
def test_tokens_text():
    assert report.tokens_text([]) == '-'
    assert report.tokens_text([16, 16, 16]) == '16 x 3'
    assert report.tokens_text([5]) == '5 x 1'
    assert report.tokens_text([16, 12]) == '(16, 12)'


def test_description_fields():
    result = run('a', model='Head', codebook_sizes=[16, 12],
                 bits_per_token=7.58, grid='4x8', params=99)
    assert description(result) == dict(
        model='Head', tokens='(16, 12)', num_codebooks=2, bits_per_token=7.58,
        grid='4x8', params=99)
    assert report.DESCRIPTION_FIELDS == ['model', 'tokens', 'num_codebooks',
                                         'bits_per_token', 'grid', 'params']


def test_aggregate_by_hand():
    """Configs in first-seen order; the description of the first successful
    run; mean and sample std over the successful runs' finite values."""
    results = [
        run('b', 0, 'failed', reason='boom', model='X', metrics=dict(
            psnr=1.0, lost=2.0), train_time_s=100.0),
        vq('b', 1, 20.0, 0.5, 10.0, grid='g'),
        run('a', 0, metrics=dict(psnr=math.nan, usage=math.inf), model='A',
            train_time_s=3.0),
        vq('b', 2, 23.0, math.nan, 16.0),
        run('c', 5, 'failed', reason='r5', model='C', codebook_sizes=[4]),
        run('c', 6, 'failed', reason='r6', model='D')]
    b, a, c = aggregate(results)
    assert b == dict(name='b', config='b.py', runs=3, ok=2, model='VQ',
                     tokens='16 x 2', num_codebooks=2, bits_per_token=8.0,
                     grid='g', params=1_234_567, reasons=['seed 0: boom'],
                     psnr_mean=21.5, psnr_std=pytest.approx(math.sqrt(4.5)),
                     usage_mean=0.5, usage_std=0.0, train_time_s_mean=13.0,
                     train_time_s_std=pytest.approx(math.sqrt(18.0)))
    # no finite value of psnr or usage: no column; one run: std 0
    assert a == dict(name='a', config='a.py', runs=1, ok=1, model='A',
                     tokens='-', num_codebooks=0, bits_per_token=0.0,
                     grid='', params=0, reasons=[], train_time_s_mean=3.0,
                     train_time_s_std=0.0)
    # none succeeded: the first run describes it, no statistics at all
    assert c == dict(name='c', config='c.py', runs=2, ok=0, model='C',
                     tokens='4 x 1', num_codebooks=1, bits_per_token=0.0,
                     grid='', params=0, reasons=['seed 5: r5', 'seed 6: r6'])


def test_a_null_metric_counts_as_missing():
    """A metric stored as ``null`` (``None``) is left out like NaN."""
    (row,) = aggregate([run('a', 0, metrics=dict(psnr=None, fid=1)),
                        run('a', 1, metrics=dict(psnr=2.0, fid=3))])
    assert (row['psnr_mean'], row['psnr_std']) == (2.0, 0.0)
    assert (row['fid_mean'], row['fid_std']) == (2.0, math.sqrt(2))


# ---------------------------------------------------------------- the table
def test_fmt_rounds_from_a_thousand_on():
    assert _fmt(1000.0) == '1000'
    assert _fmt(999.5) == '999.500'
    assert _fmt(-1234.6) == '-1235'
    assert _fmt(-999.5) == '-999.500'
    assert _fmt(0.12345) == '0.123'
    assert _fmt(0.12345, 1) == '0.1'


def test_cell_shows_the_std_only_for_several_successful_seeds():
    row = dict(ok=2, x_mean=1.5, x_std=0.25)
    assert _cell(row, 'x', True) == '1.500 ± 0.250'
    assert _cell(row, 'x', True, 1) == '1.5 ± 0.2'
    assert _cell(row, 'x', False) == '1.500'
    assert _cell(dict(row, ok=1), 'x', True) == '1.500'
    assert _cell(row, 'y', True) == '-'


def test_table_character_by_character():
    results = [vq('b', 0, 20.0, 0.5, 10.0), vq('b', 1, 22.0, 0.7, 12.0),
               run('a', 0, 'failed', reason='boom')]
    assert markdown_table(results) == '\n'.join([
        '| config | model | tokens (V x G) | bits/token | PSNR | usage '
        '| train time (s) | params (M) | runs ok |',
        '|---|---|---|---|---|---|---|---|---|',
        '| b | VQ | 16 x 2 | 8.0 | 21.000 ± 1.414 | 0.600 ± 0.141 | 11 ± 1 '
        '| 1.23 | 2/2 |',
        '| a | - | - | - | - | - | - | - | 0/1 (failed) |',
        '',
        'Failed runs:',
        '',
        '- a, seed 0: boom'])


def test_table_with_grids_and_one_seed_each():
    """A grid column when any run has a grid; no ± for one successful
    seed; no failure list when all succeeded."""
    results = [run('g', 0, metrics=dict(nll=2.0), model='Head',
                   codebook_sizes=[16, 12], bits_per_token=7.58, grid='4x8',
                   params=20_000, train_time_s=1500.4),
               run('t', 0, metrics=dict(nll=3.0), codebook_sizes=[2],
                   bits_per_token=1.0)]
    assert markdown_table(results) == '\n'.join([
        '| config | model | tokens (V x G) | bits/token | grid | nll '
        '| train time (s) | params (M) | runs ok |',
        '|---|---|---|---|---|---|---|---|---|',
        '| g | Head | (16, 12) | 7.6 | 4x8 | 2.000 | 1500 | 0.02 | 1/1 |',
        '| t | - | 2 x 1 | 1.0 | - | 3.000 | 0 | - | 1/1 |'])
    several = results + [run('g', 1, 'failed', reason='NaN')]
    lines = markdown_table(several).splitlines()
    assert lines[2] == ('| g | Head | (16, 12) | 7.6 | 4x8 | 2.000 | 1500 '
                        '| 0.02 | 1/2 (failed) |')
    assert lines[-2:] == ['', '- g, seed 1: NaN']


def test_params_in_millions_exactly():
    """1 005 001 parameters are 1.01 M, 1 004 999 are 1.00 M."""
    table = markdown_table([run('a', params=1_005_001),
                            run('b', params=1_004_999)])
    assert [line.split(' | ')[-2] for line in table.splitlines()[2:]] == [
        '1.01', '1.00']


# ------------------------------------------------------------ the CSV files
def test_csvs_character_by_character(tmp_path):
    results = [vq('b', 0, 20.0, 0.5, 10.0, grid='2x2', work_dir='w0',
                  checkpoint='c.pth', eval_time_s=1.5),
               run('a', 3, 'failed', reason='boom, twice',
                   metrics=dict(fid=4.0))]
    write_csvs(results, tmp_path)
    assert (tmp_path / 'ablation.csv').read_bytes().decode() == (
        'name,config,seed,status,reason,model,tokens,num_codebooks,'
        'bits_per_token,grid,params,train_time_s,eval_time_s,max_iters,'
        'work_dir,checkpoint,fid,psnr,usage\r\n'
        'b,b.py,0,ok,,VQ,16 x 2,2,8.0,2x2,1234567,10.0,1.5,100,w0,c.pth,,'
        '20.0,0.5\r\n'
        'a,a.py,3,failed,"boom, twice",,-,0,0.0,,0,0.0,0.0,0,,,4.0,,\r\n')
    assert (tmp_path / 'ablation_summary.csv').read_bytes().decode() == (
        'name,config,runs,ok,model,tokens,num_codebooks,bits_per_token,grid,'
        'params,psnr_mean,psnr_std,train_time_s_mean,train_time_s_std,'
        'usage_mean,usage_std\r\n'
        'b,b.py,1,1,VQ,16 x 2,2,8.0,2x2,1234567,20.0,0.0,10.0,0.0,0.5,0.0\r\n'
        'a,a.py,1,0,,-,0,0.0,,0,,,,,,\r\n')


# ------------------------------------------------------------ the report
def test_report_text_and_files(tmp_path):
    results = [vq('b', 1, 20.0, 0.5, 10.0), vq('b', 0, 22.0, 0.7, 12.0),
               run('a', 0, 'failed', reason='boom'),
               run('c', 2, metrics=dict(psnr=1.0), max_iters=200)]
    out = tmp_path / 'new' / 'dir'
    files = write_report(results, str(out))
    assert files == dict(md=out / 'ablation.md', csv=out / 'ablation.csv',
                         summary_csv=out / 'ablation_summary.csv',
                         png=out / 'ablation.png')
    assert files['md'].read_text() == '\n'.join([
        '# Ablation', '',
        '4 runs: 3 configs x seeds [0, 1, 2]; training iterations: 100, 200. '
        'Metrics on the test split; mean ± std over successful seeds.', '',
        markdown_table(results), '',
        'Per-run values: `ablation.csv`; per-config means and stds: '
        '`ablation_summary.csv`; curves and bars: `ablation.png`.', ''])
    with open(files['csv']) as f:
        assert [row['seed'] for row in csv.DictReader(f)] == ['1', '0', '0',
                                                            '2']
    with open(files['summary_csv']) as f:
        assert [row['name'] for row in csv.DictReader(f)] == ['b', 'a', 'c']
    with Image.open(files['png']) as image:   # PSNR and usage: 2 columns
        assert image.size == (720, 340)
    # the folder exists now: written again, without budgets
    files = write_report([run('a', 4, 'failed', reason='x')], str(out))
    assert files['md'].read_text().splitlines()[2] == (
        '1 runs: 1 configs x seeds [4]; training iterations: -. Metrics on '
        'the test split; mean ± std over successful seeds.')


# ---------------------------------------------------------------- the plot
@pytest.fixture
def figures(monkeypatch):
    """The figures plot_ablation makes, kept to be looked at."""
    made = []

    class Kept(Figure):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(report, 'Figure', Kept)
    return made


def _bars(ax) -> tuple:
    """Heights, error bar half-lengths, colours and the caps' size."""
    (bars,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    heights = [p.get_height() for p in bars.patches]
    segments = bars.errorbar.lines[2][0].get_segments()
    errors = [(s[1][1] - s[0][1]) / 2 if len(s) else math.nan
              for s in segments]
    colours = [p.get_facecolor() for p in bars.patches]
    return heights, errors, colours, bars.errorbar.lines[1][0].get_markersize()


def test_plot_without_curves_draws_the_bars_of_metrics_with_values(
        tmp_path, figures):
    results = [vq('b', 0, 20.0, 0.5, 10.0), vq('b', 1, 22.0, 0.7, 12.0),
               run('a', 0, metrics=dict(psnr=5.0)),
               run('f', 0, 'failed', metrics=dict(ssim=0.5))]
    path = tmp_path / 'p.png'
    assert plot_ablation(results, path) == path
    (fig,) = figures
    assert tuple(fig.get_size_inches()) == pytest.approx((7.2, 3.4))
    assert type(fig.get_layout_engine()).__name__ == 'ConstrainedLayoutEngine'
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ['test psnr', 'test usage']
    heights, errors, colours, cap = _bars(axes[0])
    assert heights[:2] == [21.0, 5.0] and math.isnan(heights[2])
    assert errors[:2] == pytest.approx([math.sqrt(2), 0.0])
    assert colours == [to_rgba('C0'), to_rgba('C1'), to_rgba('C2')]
    assert cap == 6   # capsize 3
    heights, errors, *_ = _bars(axes[1])
    assert heights[0] == pytest.approx(0.6) and np.isnan(heights[1:]).all()
    labels = axes[0].get_xticklabels()
    assert [t.get_text() for t in labels] == ['b', 'a', 'f']
    assert {(t.get_rotation(), t.get_horizontalalignment())
            for t in labels} == {(30.0, 'right')}
    assert list(axes[0].get_xticks()) == [0, 1, 2]
    assert axes[0].get_legend() is None
    with Image.open(path) as image:
        assert image.size == (720, 340)


def test_plot_is_saved_at_100_dpi_whatever_the_style(tmp_path):
    with rc_context({'savefig.dpi': 50, 'figure.dpi': 50}):
        plot_ablation([run('a', metrics=dict(psnr=1.0))], tmp_path / 'p.png')
    with Image.open(tmp_path / 'p.png') as image:
        assert image.size == (360, 340)


def test_plot_of_nothing_is_an_empty_psnr_bar(tmp_path, figures):
    plot_ablation([run('a', 0, 'failed')], tmp_path / 'p.png')
    (ax,) = figures[0].axes
    assert ax.get_title() == 'test psnr'
    assert math.isnan(_bars(ax)[0][0])


def test_plot_colours_cycle_after_ten_configs(tmp_path, figures):
    """C0 ... C9, then C0 again, whatever the style's cycle (here three
    colours: C3 is red again, C10 would be green)."""
    results = [run(f'r{i}', metrics=dict(psnr=float(i))) for i in range(11)]
    with rc_context({'axes.prop_cycle': cycler(color=['r', 'g', 'b'])}):
        plot_ablation(results, tmp_path / 'p.png')
    colours = _bars(figures[0].axes[0])[2]
    rgb = [to_rgba(c) for c in 'rgb']
    assert colours == [rgb[i % 10 % 3] for i in range(11)]


def test_plot_curves_one_line_per_seed_labelled_once(tmp_path, figures):
    """Validation curves on top (one line per seed, the config's lowest
    seed labelled), bars below; a metric without curves keeps its bar."""
    results = []
    for seed, psnr in ((3, 10.0), (1, 11.0)):
        work_dir = tmp_path / f'b{seed}'
        _write_scalars(work_dir, '20240101_000000', [
            dict(loss=1.0, iter=2, step=2), dict(psnr=psnr, step=0),
            dict(loss=1.0, iter=4, step=4), dict(psnr=psnr + 1, step=0),
            dict(loss=1.0, iter=5, step=5), dict(other=1.0, step=0)])
        results.append(vq('b', seed, psnr, 0.5, 1.0, work_dir=str(work_dir)))
    results.append(run('c', 0, metrics=dict(psnr=1.0),
                       work_dir=str(tmp_path / 'nothing')))
    results.append(run('d', 0, metrics=dict(psnr=2.0)))  # no work dir
    plot_ablation(results, tmp_path / 'p.png')
    (fig,) = figures
    assert tuple(fig.get_size_inches()) == pytest.approx((7.2, 6.4))
    curves, usage_curves, bars, usage_bars = fig.axes
    assert (curves.get_title(), curves.get_xlabel()) == ('val psnr',
                                                         'iteration')
    assert curves.get_visible() and not usage_curves.get_visible()
    assert usage_curves.get_title() == 'val usage'
    lines = curves.get_lines()
    assert [(list(line.get_xdata()), list(line.get_ydata()))
            for line in lines] == [([2, 4], [10.0, 11.0]),
                                   ([2, 4], [11.0, 12.0])]
    assert [line.get_label().startswith('_') for line in lines] == [True,
                                                                    False]
    assert lines[1].get_label() == 'b'
    assert {line.get_marker() for line in lines} == {'.'}
    assert {to_rgba(line.get_color()) for line in lines} == {to_rgba('C0')}
    legend = curves.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ['b']
    assert legend.get_texts()[0].get_fontsize() == \
        FontProperties(size='small').get_size_in_points()
    assert bars.get_title() == 'test psnr'
    assert _bars(bars)[0] == [10.5, 1.0, 2.0]
    assert usage_bars.get_title() == 'test usage'
    with Image.open(tmp_path / 'p.png') as image:
        assert image.size == (720, 640)


def test_curves_of_a_metric_without_test_values_get_a_column(tmp_path,
                                                             figures):
    """ssim: logged in validation, a column (a failed run has it), no test
    value; curves not among the columns (other) draw nothing."""
    _write_scalars(tmp_path / 'w', '20240101_000000', [
        dict(loss=1.0, iter=1, step=1), dict(ssim=0.5, other=2.0, step=0)])
    results = [run('a', 0, metrics=dict(psnr=1.0), work_dir=str(tmp_path / 'w')),
               run('f', 0, 'failed', metrics=dict(ssim=0.1, usage=0.2))]
    plot_ablation(results, tmp_path / 'p.png')
    titles = [ax.get_title() for ax in figures[0].axes]
    assert titles == ['val psnr', 'val ssim', 'test psnr', 'test ssim']
    only_other = tmp_path / 'o'
    _write_scalars(only_other, '20240101_000000', [
        dict(loss=1.0, iter=1, step=1), dict(other=2.0, step=0)])
    plot_ablation([run('a', 0, metrics=dict(psnr=1.0),
                       work_dir=str(only_other))], tmp_path / 'q.png')
    assert [ax.get_title() for ax in figures[1].axes] == ['test psnr']


# ---------------------------------------------------------------- describe
def test_apply_budget_clips_only_what_exceeds_it():
    cfg = Config(dict(
        train_cfg=dict(max_iters=5000, val_interval=150),
        param_scheduler=dict(type='CosineAnnealingLR', T_max=80, end=500),
        default_hooks=dict(checkpoint=dict(save_last=False)),
        randomness=dict(seed=1, deterministic=True)))
    assert apply_budget(cfg, max_iters=100, seed=0) is cfg
    assert cfg.train_cfg == dict(max_iters=100, val_interval=100)
    assert cfg.param_scheduler == dict(type='CosineAnnealingLR', T_max=80,
                                       end=100)
    assert cfg.default_hooks.checkpoint.save_last is True
    assert cfg.randomness == dict(seed=0, deterministic=True)
    apply_budget(cfg, max_iters=120)
    assert cfg.train_cfg == dict(max_iters=120, val_interval=100)
    apply_budget(cfg, max_iters=50)
    assert cfg.train_cfg == dict(max_iters=50, val_interval=50)
    assert cfg.param_scheduler == dict(type='CosineAnnealingLR', T_max=50,
                                       end=50)


def test_apply_budget_leaves_what_is_missing_missing():
    cfg = Config(dict(train_cfg=dict(max_iters=10),
                      param_scheduler=[dict(type='A'), dict(type='B', end=3)],
                      default_hooks=dict(logger=dict(interval=1))))
    apply_budget(cfg, max_iters=0)
    assert cfg.train_cfg == dict(max_iters=0)
    assert cfg.param_scheduler == [dict(type='A'), dict(type='B', end=0)]
    assert cfg.default_hooks == dict(logger=dict(interval=1))
    assert 'randomness' not in cfg
    assert apply_budget(cfg, seed=3) is cfg
    assert 'randomness' in cfg and cfg.train_cfg == dict(max_iters=0)
    bare = Config(dict(train_cfg=dict(max_iters=10), param_scheduler=None))
    apply_budget(bare, max_iters=4)
    assert bare.to_dict() == dict(train_cfg=dict(max_iters=4),
                                  param_scheduler=None)


def test_apply_budget_seeds_a_config_without_randomness():
    cfg = Config(dict(train_cfg=dict(max_iters=10)))
    apply_budget(cfg, seed=3)
    assert cfg.randomness == dict(seed=3)


def _tokenizer(quantizer: dict) -> dict:
    """A tiny tokenizer config with every training-only part: a real
    discriminator and two that cannot be built."""
    return dict(
        type='ImageTokenizer',
        encoder=dict(type='VQGANEncoder', ch=8, ch_mult=(1, 2),
                     num_res_blocks=1, z_channels=8),
        decoder=dict(type='VQGANDecoder', ch=8, ch_mult=(1, 2),
                     num_res_blocks=1, z_channels=8),
        quantizer=quantizer,
        discriminator=dict(type='PatchGANDiscriminator', ndf=8, num_layers=2),
        perceptual_loss=dict(type='NoSuchPerceptualLoss'),
        regularizers=[dict(type='NoSuchRegularizer')])


def test_describe_model_counts_the_inference_tokenizer(scopes):
    assert TRAINING_ONLY == ('discriminator', 'perceptual_loss',
                             'regularizers')
    fq = dict(type='FactorizedQuantizer', num_codebooks=2,
              quantizer=dict(type='VectorQuantizer', codebook_size=16,
                             embed_dim=4))
    cfg = Config(dict(model=_tokenizer(fq)))
    init_default_scope('mmengine')   # the config names none: fqzoo's
    described = describe_model(cfg)
    assert DefaultScope.get_current_instance().scope_name == 'fqzoo'
    assert cfg.model.to_dict() == _tokenizer(fq)   # left as it was
    full = _tokenizer(fq)
    del full['perceptual_loss'], full['regularizers']
    params = {name: p.numel()
              for name, p in MODELS.build(full).named_parameters()}
    assert any(name.startswith('discriminator.') for name in params)
    assert described == dict(
        model='FactorizedQuantizer(VectorQuantizer)', codebook_sizes=[16, 16],
        grid='', bits_per_token=8.0,
        params=sum(n for name, n in params.items()
                   if not name.startswith('discriminator.')))
    plain = {k: v for k, v in _tokenizer(dict(
        type='VectorQuantizer', codebook_size=32, embed_dim=4)).items()
        if k not in TRAINING_ONLY}   # none to leave out
    plain = describe_model(Config(dict(model=plain)))
    assert (plain['model'], plain['codebook_sizes'],
            plain['bits_per_token']) == ('VectorQuantizer', [32], 5.0)


def test_describe_model_keeps_the_scope_the_config_names(scopes):
    """An unknown scope falls back to fqzoo's registry; it stays current."""
    describe_model(Config(dict(default_scope='my_project', model=_tokenizer(
        dict(type='VectorQuantizer', codebook_size=32, embed_dim=4)))))
    assert DefaultScope.get_current_instance().scope_name == 'my_project'
