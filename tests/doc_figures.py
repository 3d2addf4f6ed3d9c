"""Where the figures README.md and docs/*.md quote come from.

Each entry ties quoted numbers to the results file they were read from
(``docs/results/...``); ``tests/test_docs.py`` reads the file and checks
every number at the precision the doc quotes it (docs/testing.md, "Figures
in the docs"). Two kinds of entry:

- :class:`Quote`: ``text`` appears in ``doc`` (a run of whitespace counts
  as one space, so line breaks do not matter); its numbers, in order, are
  ``values``, one each (``None`` for a number that is not a result: a seed,
  a size, the 255 of "/255").
- :class:`Table`: the first markdown table after the line holding
  ``after``; ``columns`` maps a header to the values of that column's cell
  (a cell without a number, "-", empty or "skipped (memory)", must have no
  value in the source). A row is named by its first cell (backticks
  removed), or, where that repeats, by the cells of the ``key`` columns
  joined by " / " (``key=('implementation', 'K', 'D')``: ``'fqzoo
  (blocked) / 2^14 / 256'``). Without ``rows`` every row is checked, its
  name filling ``{name}``; with ``rows`` (name -> template variables) the
  table must have exactly those rows; a row's ``columns`` variable
  overrides the entry's columns for that row. A new row of a checked table
  is checked the day it is added.

A value is a key of the entry's source, ``'path#key'`` for a key of another
file, or a function ``f(get, **row)`` of a lookup ``get(key)`` (a figure
derived from several: :func:`diff`, :func:`mean_diff`, :func:`percent` ...).
Keys, with ``{variable}`` templates filled from the row:

- JSON: a dotted path, ``metrics.psnr``, ``seeds.0.psnr`` (the keys of
  fqzoo's ``metrics.json`` contain ``/`` but no dot);
- CSV (``tools/ablate.py``'s reports): ``name:column`` (a row of
  ``ablation_summary.csv``), ``name@seed:column`` (a run of
  ``ablation.csv``), ``*:column`` (the list over every row).
"""
import statistics
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Union

Value = Union[None, str, Callable]

RESULTS = 'docs/results'
QUICKSTART = f'{RESULTS}/quickstart/make_quickstart.json'
THREE_SEEDS = f'{RESULTS}/quickstart/three_seeds.json'
CPU_RECIPE = f'{RESULTS}/ablation_cpu_recipe'
CPU_NONE = f'{RESULTS}/ablation_cpu_none'
FMNIST = f'{RESULTS}/ablation_fmnist'
FAR_HEADS = f'{RESULTS}/far_heads/ablation_summary.csv'
CLASSIFIER = 'fqzoo/evaluation/assets/fmnist_classifier.json'


@dataclass(frozen=True)
class Quote:
    doc: str
    text: str
    source: str
    values: Sequence[Value]


@dataclass(frozen=True)
class Table:
    doc: str
    after: str
    source: str
    columns: Dict[str, Sequence[Value]]
    rows: Optional[Dict[str, dict]] = field(default=None)
    key: Sequence[str] = ()


# ------------------------------------------------------- derived figures
def diff(a: str, b: str) -> Callable:
    """``a - b``."""
    return lambda get, **row: get(a.format(**row)) - get(b.format(**row))


def neg(key: str) -> Callable:
    return lambda get, **row: -get(key.format(**row))


def mean_diff(a: str, b: str, seeds=(0, 1, 2)) -> Callable:
    """The mean over ``seeds`` of ``a - b`` (templates with ``{seed}``)."""
    return lambda get, **row: statistics.mean(
        get(a.format(seed=s, **row)) - get(b.format(seed=s, **row))
        for s in seeds)


def percent(key: str) -> Callable:
    return lambda get, **row: 100 * get(key.format(**row))


def seed_diffs(column: str, a: str, b: str) -> List[Callable]:
    """Seeds 0, 1, 2 and their mean of ``a - b`` in ``column`` of
    ``ablation.csv``."""
    return [diff(f'{a}@{s}:{column}', f'{b}@{s}:{column}')
            for s in (0, 1, 2)] + [
                mean_diff(f'{a}@{{seed}}:{column}', f'{b}@{{seed}}:{column}')]


def mean_std(column: str) -> List[str]:
    """``mean ± std`` of an ``ablation_summary.csv`` column."""
    return [f'{{name}}:{column}_mean', f'{{name}}:{column}_std']


def extreme(pick: Callable, keys: Sequence[str],
            transform: Callable = lambda x: x) -> Callable:
    """``pick`` (min / max) over ``keys`` after ``transform``."""
    return lambda get, **row: pick(transform(get, k) for k in keys)


TABLE3 = ('vq', 'fq2_plain', 'fq2_no_teacher', 'fq2_no_disentangle', 'fq2')
PAIRS = {  # the paired-by-seed rows of docs/ablations.md
    'FQ-2 (no regularizers) - VQ': dict(a='fq2_plain', b='vq'),
    'FQ-2 (both regularizers) - VQ': dict(a='fq2', b='vq'),
    '+ disentanglement (fq2_no_teacher - fq2_plain)':
        dict(a='fq2_no_teacher', b='fq2_plain'),
    '+ teacher (fq2_no_disentangle - fq2_plain)':
        dict(a='fq2_no_disentangle', b='fq2_plain'),
    '+ both (fq2 - fq2_plain)': dict(a='fq2', b='fq2_plain'),
    'teacher on top of disentanglement (fq2 - fq2_no_teacher)':
        dict(a='fq2', b='fq2_no_teacher'),
    'disentanglement on top of the teacher (fq2 - fq2_no_disentangle)':
        dict(a='fq2', b='fq2_no_disentangle'),
    '2 x 1024 - 2 x 512': dict(a='fq2_2x1024', b='fq2'),
    'FQ-3 - FQ-2': dict(a='fq3', b='fq2'),
}
PAIRED = {f'seed {s}': [diff(f'{{a}}@{s}:psnr', f'{{b}}@{s}:psnr')]
          for s in (0, 1, 2)}
PAIRED['mean'] = [mean_diff('{a}@{seed}:psnr', '{b}@{seed}:psnr')]
RECON = {'bits/token': ['{name}:bits_per_token'], 'PSNR': mean_std('psnr'),
         'SSIM': mean_std('ssim')}
USAGE = {f'usage_{g}': mean_std(f'usage_{g}') for g in range(3)}
# the Fashion-MNIST tables: reconstruction, then the classifier's columns
FMNIST_RECON = {**RECON, 'fid_fmnist_recon': mean_std('fid_fmnist_recon'),
                'fmnist_recon_agreement': mean_std('fmnist_recon_agreement')}


def _gain(get, name):
    return (get(f'{CPU_NONE}/ablation_summary.csv#{name}:psnr_mean')
            - get(f'{CPU_RECIPE}/ablation_summary.csv#{name}:psnr_mean'))


def _std(source):
    return lambda get, name: get(f'{source}/ablation_summary.csv#{name}'
                                 f':psnr_std')


FIGURES = [
    # ------------------------------------------------ README: quickstart
    Quote('README.md', 'about 11 minutes on 2 CPU cores', QUICKSTART,
          [lambda get: get('wall_time_s') / 60, None]),
    Quote('README.md', 'running: 11 min 12 s in all', QUICKSTART,
          [lambda get: get('wall_time_s') // 60,
           lambda get: get('wall_time_s') % 60]),
    Quote('README.md',
          '| 26.18 | 0.782 | 0.441 | 153.8 | 0.90 / 0.85 | 258 / 173 |',
          QUICKSTART,
          [f'metrics.{k}' for k in (
              'psnr', 'ssim', 'effnet_perceptual', 'fid_effnet_offline',
              'usage_0', 'usage_1', 'perplexity_0', 'perplexity_1')]),
    Table('README.md', 'and on the whole held-out photos at 256 x 256',
          QUICKSTART,
          {'PSNR whole': ['metrics.whole/{photo}psnr'],
           'PSNR tiled': ['metrics.tiled/{photo}psnr'],
           'mean-colour shift whole (0-255)':
               ['metrics.whole/{photo}colour_shift']},
          rows={'coffee': dict(photo='coffee/'),
                'grace_hopper': dict(photo='grace_hopper/'),
                'mean': dict(photo='')}),
    Quote('README.md',
          'is 25.51 ± 0.57 dB, the whole-photo PSNR 25.11 ± 0.32 dB and the '
          'colour shift 5.8 ± 2.1/255: seed 0 is the best of the three, '
          'seeds 1 and 2 shift the mean colour by 6.8 and 7.2 levels',
          THREE_SEEDS,
          ['mean.psnr', 'std.psnr', 'mean.whole/psnr', 'std.whole/psnr',
           'mean.whole/colour_shift', 'std.whole/colour_shift', None, None,
           None, None, 'seeds.1.whole/colour_shift',
           'seeds.2.whole/colour_shift']),
    Quote('README.md',
          'over three seeds the quickstart spreads by 0.6 dB PSNR and the '
          'configs of the quantizer ablation by 0.2 to 2.0 dB',
          THREE_SEEDS,
          ['std.psnr',
           lambda get: min(get(f'{CPU_RECIPE}/ablation_summary.csv'
                               f'#*:psnr_std')),
           lambda get: max(get(f'{CPU_RECIPE}/ablation_summary.csv'
                               f'#*:psnr_std'))]),
    # ------------------------------------------- docs/cpu_recipe.md
    Quote('docs/cpu_recipe.md',
          '| 0 | **26.08** | **25.44** | 25.28 | 3.4 (3.6 / 3.3) | '
          '0.91 / 0.84 |', THREE_SEEDS,
          [None] + [f'seeds.0.{k}' for k in (
              'psnr', 'whole/psnr', 'tiled/psnr', 'whole/colour_shift',
              'whole/coffee/colour_shift', 'whole/grace_hopper/colour_shift',
              'usage_0', 'usage_1')]),
    *[Quote('docs/cpu_recipe.md', text, THREE_SEEDS,
            [None] + [f'seeds.{seed}.{k}' for k in (
                'psnr', 'whole/psnr', 'tiled/psnr', 'whole/colour_shift',
                'whole/coffee/colour_shift',
                'whole/grace_hopper/colour_shift', 'usage_0', 'usage_1')])
      for seed, text in (
          (1, '| | | 1 | 24.95 | 24.79 | 24.23 | 6.8 (5.8 / 7.7) | '
              '0.80 / 0.85 |'),
          (2, '| | | 2 | 25.49 | 25.11 | 24.83 | 7.2 (8.0 / 6.4) | '
              '0.86 / 0.79 |'))],
    Quote('docs/cpu_recipe.md',
          '| held-out patch PSNR | >= 24 dB | 26.08 dB | 24.95 dB | 25.49 dB '
          '| 25.51 ± 0.57 dB |', THREE_SEEDS,
          [None, 'seeds.0.psnr', 'seeds.1.psnr', 'seeds.2.psnr', 'mean.psnr',
           'std.psnr']),
    *[Quote('docs/cpu_recipe.md', text, THREE_SEEDS,
            [None, None] + [percent(f'seeds.{s}.usage_{g}') for s in (0, 1, 2)]
            + [percent(f'mean.usage_{g}'), percent(f'std.usage_{g}')])
      for g, text in (
          (0, '| usage, sub-codebook 0 | >= 80% | 91% | 80% | 86% | '
              '86 ± 6% |'),
          (1, '| usage, sub-codebook 1 | >= 80% | 84% | 85% | 79% | '
              '83 ± 3% |'))],
    Quote('docs/cpu_recipe.md',
          '| whole photos, PSNR | >= 23 dB | 25.44 dB | 24.79 dB | 25.11 dB '
          '| 25.11 ± 0.32 dB |', THREE_SEEDS,
          [None, 'seeds.0.whole/psnr', 'seeds.1.whole/psnr',
           'seeds.2.whole/psnr', 'mean.whole/psnr', 'std.whole/psnr']),
    Quote('docs/cpu_recipe.md',
          '| whole photos, colour shift | <= 6/255 | 3.4/255 | 6.8/255 | '
          '7.2/255 | 5.8 ± 2.1/255 |', THREE_SEEDS,
          [None, None, 'seeds.0.whole/colour_shift', None,
           'seeds.1.whole/colour_shift', None, 'seeds.2.whole/colour_shift',
           None, 'mean.whole/colour_shift', 'std.whole/colour_shift', None]),
    Quote('docs/cpu_recipe.md',
          '| colour shift, coffee / grace_hopper | | 3.6 / 3.3 | 5.8 / 7.7 | '
          '8.0 / 6.4 | 5.8 / 5.8 |', THREE_SEEDS,
          [f'{part}.whole/{photo}/colour_shift'
           for part in ('seeds.0', 'seeds.1', 'seeds.2', 'mean')
           for photo in ('coffee', 'grace_hopper')]),
    Quote('docs/cpu_recipe.md',
          '| wall time, 2 threads, quiet machine | <= 15 min | 11.2 min |',
          QUICKSTART, [None, None, lambda get: get('wall_time_s') / 60]),
    Quote('docs/cpu_recipe.md',
          'took 11 min 12 s in all, training and evaluation (0.255 s per '
          'step on average), and scored 26.18 dB on the patches, 25.68 dB '
          'and a colour shift of 3.1/255 (coffee 3.7, grace_hopper 2.5) on '
          'the whole photos', QUICKSTART,
          [lambda get: get('wall_time_s') // 60,
           lambda get: get('wall_time_s') % 60, 'seconds_per_step',
           'metrics.psnr', 'metrics.whole/psnr', 'metrics.whole/colour_shift',
           None, 'metrics.whole/coffee/colour_shift',
           'metrics.whole/grace_hopper/colour_shift']),
    Quote('docs/cpu_recipe.md',
          'Whole vs tiled over the three seeds: 25.11 vs 24.78', THREE_SEEDS,
          ['mean.whole/psnr', 'mean.tiled/psnr']),
    # -------------------------- docs/ablations.md: CPU recipe, 3 seeds
    Table('docs/ablations.md', '## Results with the CPU recipe: bundled',
          f'{CPU_RECIPE}/ablation_summary.csv',
          {**RECON, 'effnet_perceptual': mean_std('effnet_perceptual'),
           'fid_effnet_offline': mean_std('fid_effnet_offline'), **USAGE,
           'params (M)': [lambda get, name: get(f'{name}:params') / 1e6]}),
    Table('docs/ablations.md', 'with and without one change. PSNR',
          f'{CPU_RECIPE}/ablation.csv', PAIRED, rows=PAIRS),
    Table('docs/ablations.md', "Beside the paper's Table 3 (ImageNet 256 px",
          f'{CPU_RECIPE}/ablation_summary.csv',
          {'PSNR here (mean of 3)': ['{config}:psnr_mean']},
          rows={'VQ-16384 / VQ-32768': dict(config='vq'),
                'FQ': dict(config='fq2_plain'),
                '+ disentanglement': dict(config='fq2_no_teacher'),
                '+ representation learning (teacher)':
                    dict(config='fq2_no_disentangle'),
                '+ both': dict(config='fq2')}),
    Quote('docs/ablations.md',
          'three seeds (+1.40 dB on average; also better SSIM and perceptual '
          'distance); plain FQ-2 beats it in two of three (+0.84)',
          f'{CPU_RECIPE}/ablation.csv',
          [mean_diff('fq2@{seed}:psnr', 'vq@{seed}:psnr'),
           None, mean_diff('fq2_plain@{seed}:psnr', 'vq@{seed}:psnr')]),
    Quote('docs/ablations.md',
          'below plain FQ-2 in all three seeds (-0.59 dB), and the '
          'disentanglement loss alone is a wash (-0.04',
          f'{CPU_RECIPE}/ablation.csv',
          [None, mean_diff('fq2_no_disentangle@{seed}:psnr',
                           'fq2_plain@{seed}:psnr'),
           mean_diff('fq2_no_teacher@{seed}:psnr', 'fq2_plain@{seed}:psnr')]),
    Quote('docs/ablations.md', 'the teacher adds +0.61 dB in every seed',
          f'{CPU_RECIPE}/ablation.csv',
          [mean_diff('fq2@{seed}:psnr', 'fq2_no_teacher@{seed}:psnr')]),
    Quote('docs/ablations.md', '2 x 1024 is +0.37 dB over 2 x 512',
          f'{CPU_RECIPE}/ablation.csv',
          [None, None, mean_diff('fq2_2x1024@{seed}:psnr', 'fq2@{seed}:psnr'),
           None, None]),
    Quote('docs/ablations.md', '(-0.70 dB, every seed), despite 27 bits',
          f'{CPU_RECIPE}/ablation.csv',
          [mean_diff('fq3@{seed}:psnr', 'fq2@{seed}:psnr'),
           'fq3@0:bits_per_token']),
    Quote('docs/ablations.md',
          'FSQ (1000 codes, 20.9 dB) is level with VQ-1024; LFQ (17.1)',
          f'{CPU_RECIPE}/ablation_summary.csv',
          [None, 'fsq:psnr_mean', None, 'lfq:psnr_mean']),
    Quote('docs/ablations.md', 'RVQ 2 x 512 (18.4)',
          f'{CPU_RECIPE}/ablation_summary.csv', [None, None, 'rvq:psnr_mean']),
    Quote('docs/ablations.md', '19.89 dB against 22.69 without it',
          f'{RESULTS}/ablation_cpu_gan/ablation.csv',
          ['fq2_gan@0:psnr', 'fq2@0:psnr']),
    Quote('docs/cpu_recipe.md',
          '(PSNR 19.89 vs 22.69 dB, EfficientNet perceptual 0.815 vs 0.607, '
          'offline FID 217 vs 174', f'{RESULTS}/ablation_cpu_gan/ablation.csv',
          [f'{name}@0:{metric}' for metric in (
              'psnr', 'effnet_perceptual', 'fid_effnet_offline')
           for name in ('fq2_gan', 'fq2')]),
    # --------------------------- docs/ablations.md: trunk without norms
    Table('docs/ablations.md',
          '### The Table-3 configs on the trunk without norm layers',
          f'{CPU_NONE}/ablation.csv',
          {'PSNR (seeds 0 / 1 / 2)': [f'{{name}}@{s}:psnr' for s in (0, 1, 2)],
           'mean': [f'{CPU_NONE}/ablation_summary.csv#{{name}}:psnr_mean',
                    f'{CPU_NONE}/ablation_summary.csv#{{name}}:psnr_std'],
           'per-position trunk (table above)':
               [f'{CPU_RECIPE}/ablation_summary.csv#{{name}}:psnr_mean']}),
    Table('docs/ablations.md', 'Paired by seed:', f'{CPU_NONE}/ablation.csv',
          PAIRED, rows={k: v for k, v in PAIRS.items()
                        if v['a'] in TABLE3 and v['b'] in TABLE3}),
    Quote('docs/ablations.md',
          '**Every config gains** 0.2-1.4 dB from the trunk change, and the '
          'seeds spread less (standard deviations 0.3-0.6 dB against '
          '0.5-1.6)', CPU_NONE,
          [extreme(min, TABLE3, _gain), extreme(max, TABLE3, _gain),
           extreme(min, TABLE3, _std(CPU_NONE)),
           extreme(max, TABLE3, _std(CPU_NONE)),
           extreme(min, TABLE3, _std(CPU_RECIPE)),
           extreme(max, TABLE3, _std(CPU_RECIPE))]),
    Quote('docs/ablations.md',
          'with both regularizers in every seed (+0.50 dB) and without them '
          'in two of three (+0.81)', f'{CPU_NONE}/ablation.csv',
          [mean_diff('fq2@{seed}:psnr', 'vq@{seed}:psnr'),
           mean_diff('fq2_plain@{seed}:psnr', 'vq@{seed}:psnr')]),
    Quote('docs/ablations.md', 'on this trunk it costs 0.35 dB on top of it',
          f'{CPU_NONE}/ablation.csv',
          [lambda get: -mean_diff('fq2@{seed}:psnr',
                                  'fq2_no_teacher@{seed}:psnr')(get)]),
    # -------------------------------- docs/ablations.md: Fashion-MNIST
    Table('docs/ablations.md', '## Results on Fashion-MNIST',
          f'{FMNIST}/ablation_summary.csv',
          {**FMNIST_RECON,
           **{f'usage_{g}': [f'{{name}}:usage_{g}_mean'] for g in range(3)},
           'seeds': ['{name}:runs']}),
    Quote('docs/ablations.md',
          "The classifier's accuracy on the test images is 0.913",
          CLASSIFIER, ['test_accuracy']),
    Table('docs/ablations.md', 'Paired by seed (seed 0 / seed 1 / seed 2',
          f'{FMNIST}/ablation.csv',
          {'PSNR': seed_diffs('psnr', '{a}', '{b}'),
           'fid_fmnist_recon': seed_diffs('fid_fmnist_recon', '{a}', '{b}')},
          rows={**{k: PAIRS[k] for k in (
              'FQ-2 (no regularizers) - VQ',
              '+ disentanglement (fq2_no_teacher - fq2_plain)',
              '+ teacher (fq2_no_disentangle - fq2_plain)',
              '+ both (fq2 - fq2_plain)')},
              'FQ-2 with both - VQ': dict(a='fq2', b='vq')}),
    Quote('docs/ablations.md',
          'FQ-2 (2 x 512) is 0.78 dB above VQ-1024 and its classifier FID '
          'is 14% lower', f'{FMNIST}/ablation_summary.csv',
          [None, None, None,
           lambda get: get('fq2_plain:psnr_mean') - get('vq:psnr_mean'),
           None,
           lambda get: 100 * (1 - get('fq2_plain:fid_fmnist_recon_mean')
                              / get('vq:fid_fmnist_recon_mean'))]),
    Quote('docs/ablations.md',
          'It costs 0.12 dB in every seed, and its classifier-FID gain of the '
          'first two seeds (-0.05, -0.12) is gone in the third (+0.15)',
          f'{FMNIST}/ablation.csv',
          [lambda get: -mean_diff('fq2_no_teacher@{seed}:psnr',
                                  'fq2_plain@{seed}:psnr')(get)]
          + seed_diffs('fid_fmnist_recon', 'fq2_no_teacher',
                       'fq2_plain')[:3]),
    Quote('docs/ablations.md',
          'raises the classifier FID (+0.23 on average)',
          f'{FMNIST}/ablation.csv',
          [mean_diff('fq2_no_disentangle@{seed}:fid_fmnist_recon',
                     'fq2_plain@{seed}:fid_fmnist_recon')]),
    Quote('docs/ablations.md',
          'iterations (-0.23 / -0.07 / -0.01 dB); FQ-3 is above FQ-2 in every '
          'seed (+0.12 / +0.43 / +0.31, mean +0.29 dB)',
          f'{FMNIST}/ablation.csv',
          seed_diffs('psnr', 'fq2_2x1024', 'fq2')[:3]
          + [None, None] + seed_diffs('psnr', 'fq3', 'fq2')),
    Quote('docs/ablations.md',
          'RVQ 2 x 512 is level with plain FQ-2 (-0.18 / +0.49 / +0.12 '
          'against `fq2_plain`, mean +0.15 dB)', f'{FMNIST}/ablation.csv',
          [None, None, None] + seed_diffs('psnr', 'rvq', 'fq2_plain')),
    Quote('docs/ablations.md',
          'FSQ is below VQ in every seed (-0.58 / -0.25 / -0.45 dB) and LFQ '
          'far below (21.57 dB', f'{FMNIST}/ablation.csv',
          seed_diffs('psnr', 'fsq', 'vq')[:3]
          + [f'{FMNIST}/ablation_summary.csv#lfq:psnr_mean']),
    # --------------------- docs/ablations.md: old recipe, FAR heads
    Table('docs/ablations.md', '24 runs: 8 configs x seeds [0, 1, 2]',
          f'{RESULTS}/ablation/ablation_summary.csv',
          {'codebook (K x G)': ['{name}:codebook_size',
                                '{name}:num_codebooks'],
           **RECON, 'effnet_perceptual': mean_std('effnet_perceptual'),
           'fid_effnet_offline': mean_std('fid_effnet_offline'), **USAGE,
           **{f'perplexity_{g}': mean_std(f'perplexity_{g}')
              for g in range(3)},
           'train time (s)': mean_std('train_time_s'),
           'params (M)': [lambda get, name: get(f'{name}:params') / 1e6],
           'runs ok': ['{name}:ok', '{name}:runs']}),
    Quote('docs/ablations.md',
          '17.1 ± 0.3 dB PSNR against 18.2 ± 0.2 dB',
          f'{RESULTS}/ablation/ablation_summary.csv',
          ['fq2:psnr_mean', 'fq2:psnr_std', 'vq:psnr_mean', 'vq:psnr_std']),
]

FAR_HEAD_ROWS = {
    'factorized AR head (1 block)': dict(name='ar_head'),
    'parallel linear (+1 trunk layer)': dict(name='linear_head'),
    'parallel MLP': dict(name='mlp_head'),
    # one sub-token: its nll_0 is the NLL, the table leaves it out
    '(AR on VQ-512 codes)': dict(name='ar_tiny_fmnist', columns=dict(
        nll_0=[], nll_1=[])),
}
SAMPLES = {
    'class acc. cfg 1 / 3': ['{name}:fmnist_class_accuracy@cfg1.0_mean',
                             '{name}:fmnist_class_accuracy@cfg3.0_mean'],
    'classifier FID cfg 1 / 3': ['{name}:fid_fmnist_classifier@cfg1.0_mean',
                                 '{name}:fid_fmnist_classifier@cfg3.0_mean'],
}
FIGURES += [
    Table('docs/ablations.md', '### The FAR head ablation', FAR_HEADS,
          {'params': [lambda get, name: get(f'{name}:params') / 1e6],
           'held-out NLL': ['{name}:nll_mean'], 'nll_0': ['{name}:nll_0_mean'],
           'nll_1': ['{name}:nll_1_mean'], **SAMPLES},
          rows=FAR_HEAD_ROWS),
    # ------------------------------- docs/generation.md, docs/metrics.md
    Table('docs/generation.md', '| model | codes | held-out NLL', FAR_HEADS,
          {'held-out NLL (nll_0 / nll_1)': ['{name}:nll_mean',
                                            '{name}:nll_0_mean',
                                            '{name}:nll_1_mean'],
           'bits / position': ['{name}:bits_per_position_mean'],
           'class acc. cfg 1': ['{name}:fmnist_class_accuracy@cfg1.0_mean'],
           'classifier FID cfg 1': ['{name}:fid_fmnist_classifier@cfg1.0_mean'],
           'class acc. cfg 3': ['{name}:fmnist_class_accuracy@cfg3.0_mean'],
           'classifier FID cfg 3':
               ['{name}:fid_fmnist_classifier@cfg3.0_mean']},
          rows={'FAR, factorized AR head': dict(name='ar_head'),
                'FAR, parallel linear head': dict(name='linear_head'),
                'FAR, parallel MLP head': dict(name='mlp_head'),
                'AR': dict(name='ar_tiny_fmnist', columns={
                    'held-out NLL (nll_0 / nll_1)': ['{name}:nll_mean']})}),
    Quote('docs/generation.md',
          'FQ-2 25.65 dB PSNR, SSIM 0.863, usage 1.00 / 1.00 (perplexity '
          '212 / 198); VQ 25.69 dB, SSIM 0.867, usage 1.00 (perplexity 431)',
          f'{RESULTS}/generation/tokenizers.json',
          [None] + [f'fq2.{k}' for k in ('psnr', 'ssim', 'usage_0', 'usage_1',
                                         'perplexity_0', 'perplexity_1')]
          + [f'vq.{k}' for k in ('psnr', 'ssim', 'usage_0', 'perplexity_0')]),
    Quote('docs/generation.md', '91.3% test accuracy', CLASSIFIER,
          [percent('test_accuracy')]),
    Quote('docs/generation.md',
          'training images score 0.926 and 0.17 at 1000 images',
          f'{RESULTS}/fmnist_classifier/real_images.json',
          ['1000.fmnist_class_accuracy', '1000.fid_fmnist_classifier', None]),
    Quote('docs/metrics.md', 'Test accuracy 91.3 %', CLASSIFIER,
          [percent('test_accuracy')]),
    Quote('docs/tools.md',
          '`fqzoo/evaluation/assets/fmnist_classifier.pt`: 91.3 % test '
          'accuracy after 4 epochs (14 min on one CPU thread', CLASSIFIER,
          [percent('test_accuracy'), 'epochs',
           lambda get: get('total_seconds') / 60]),
    Quote('docs/metrics.md',
          'class accuracy 0.926 and classifier FID 0.17 with 1000 images (100 '
          'per class), 0.926 and 0.039 with 10000',
          f'{RESULTS}/fmnist_classifier/real_images.json',
          ['1000.fmnist_class_accuracy', '1000.fid_fmnist_classifier', None,
           None, '10000.fmnist_class_accuracy', '10000.fid_fmnist_classifier',
           None]),
]

SIMVQ_IBQ = f'{RESULTS}/ablation_simvq_ibq'
FIGURES += [
    # ------------------- docs/ablations.md: SimVQ, IBQ, rotation trick
    Table('docs/ablations.md', '### Bundled photos, 3 seeds',
          f'{SIMVQ_IBQ}/ablation.csv',
          {'bits/token': ['{name}@0:bits_per_token'],
           'PSNR (seeds 0 / 1 / 2)': [f'{{name}}@{s}:psnr' for s in (0, 1, 2)],
           **{column: [f'{SIMVQ_IBQ}/ablation_summary.csv#{key}'
                       for key in keys]
              for column, keys in {
                  'PSNR': mean_std('psnr'), 'SSIM': mean_std('ssim'),
                  'usage_0': mean_std('usage_0'),
                  'perplexity_0': mean_std('perplexity_0'),
                  'usage_1': mean_std('usage_1')}.items()}}),
    Table('docs/ablations.md', 'Paired by seed (PSNR, seed 0 / 1 / 2, then',
          f'{SIMVQ_IBQ}/ablation.csv', PAIRED,
          rows={'SimVQ - VQ': dict(a='simvq', b='vq'),
                'IBQ - VQ': dict(a='ibq', b='vq'),
                'rotation trick (vq_rotation - vq)':
                    dict(a='vq_rotation', b='vq'),
                'FQ-2 - VQ (fq2_plain - vq)': dict(a='fq2_plain', b='vq'),
                'FQ-2 of SimVQ - SimVQ': dict(a='fq2_simvq', b='simvq'),
                'FQ-2 of SimVQ - FQ-2 (fq2_simvq - fq2_plain)':
                    dict(a='fq2_simvq', b='fq2_plain'),
                '16384 - 1024 codes, VQ (vq_16k - vq)':
                    dict(a='vq_16k', b='vq'),
                'no restart at 16384 (vq_16k_no_restart - vq_16k)':
                    dict(a='vq_16k_no_restart', b='vq_16k'),
                'SimVQ - VQ without restart at 16384 (simvq_16k - '
                'vq_16k_no_restart)':
                    dict(a='simvq_16k', b='vq_16k_no_restart'),
                'one 16384 codebook - FQ-2 2 x 512 (vq_16k - fq2_plain)':
                    dict(a='vq_16k', b='fq2_plain')}),
    Quote('docs/ablations.md', 'they are within 0.22 dB of that section',
          f'{SIMVQ_IBQ}/ablation.csv',
          [lambda get: max(
              abs(get(f'{SIMVQ_IBQ}/ablation.csv#{n}@{s}:psnr')
                  - get(f'{CPU_NONE}/ablation.csv#{n}@{s}:psnr'))
              for n in ('vq', 'fq2_plain') for s in (0, 1, 2))]),
    Quote('docs/ablations.md', 'and the reconstruction is 9 dB below VQ',
          f'{SIMVQ_IBQ}/ablation.csv',
          [lambda get: -mean_diff('ibq@{seed}:psnr', 'vq@{seed}:psnr')(get)]),
    Quote('docs/ablations.md', 'the codes in use are among the 5.5% longest',
          f'{SIMVQ_IBQ}/ibq_codes_in_use.json',
          [percent('worst_rank_fraction')]),
    Quote('docs/ablations.md', 'Below VQ-1024 in every seed (-1.58 dB on '
          'average, one seed -3.9 dB), with a quarter of its codes in use '
          "against VQ's 60%", f'{SIMVQ_IBQ}/ablation.csv',
          [None, mean_diff('simvq@{seed}:psnr', 'vq@{seed}:psnr'),
           lambda get: get('simvq@2:psnr') - get('vq@2:psnr'),
           lambda get: 100 * get(f'{SIMVQ_IBQ}/ablation_summary.csv'
                                 '#vq:usage_0_mean')]),
    Quote('docs/ablations.md', '(usage 0.040 vs 0.026, perplexity 215 vs 93',
          f'{SIMVQ_IBQ}/ablation_summary.csv',
          ['simvq_16k:usage_0_mean', 'vq_16k_no_restart:usage_0_mean',
           'simvq_16k:perplexity_0_mean',
           'vq_16k_no_restart:perplexity_0_mean']),
    Quote('docs/ablations.md', 'at level PSNR (-0.29 dB, seeds disagree)',
          f'{SIMVQ_IBQ}/ablation.csv',
          [mean_diff('simvq_16k@{seed}:psnr',
                     'vq_16k_no_restart@{seed}:psnr')]),
    Quote('docs/ablations.md', 'The rotation trick changes nothing '
          'measurable** at this scale (-0.25', f'{SIMVQ_IBQ}/ablation.csv',
          [mean_diff('vq_rotation@{seed}:psnr', 'vq@{seed}:psnr')]),
    Quote('docs/ablations.md', 'at 16384 codes plain VQ uses 3% of its '
          'codes without the restart and 12% with it (perplexity 93 vs 957); '
          'the restart is worth +0.86 dB there',
          f'{SIMVQ_IBQ}/ablation_summary.csv',
          [None, percent('vq_16k_no_restart:usage_0_mean'),
           percent('vq_16k:usage_0_mean'),
           'vq_16k_no_restart:perplexity_0_mean', 'vq_16k:perplexity_0_mean',
           lambda get: -mean_diff(
               f'{SIMVQ_IBQ}/ablation.csv#vq_16k_no_restart@{{seed}}:psnr',
               f'{SIMVQ_IBQ}/ablation.csv#vq_16k@{{seed}}:psnr')(get)]),
    Quote('docs/ablations.md', 'the same 1024 entries) is +0.78 dB in every '
          'seed', f'{SIMVQ_IBQ}/ablation.csv',
          [None, mean_diff('fq2_plain@{seed}:psnr', 'vq@{seed}:psnr')]),
    Quote('docs/ablations.md', '14 bits), no: that is +0.40 dB above FQ-2',
          f'{SIMVQ_IBQ}/ablation.csv',
          ['vq_16k@0:bits_per_token',
           mean_diff('vq_16k@{seed}:psnr', 'fq2_plain@{seed}:psnr'), None]),
    Quote('docs/ablations.md', '(FQ-2 of SimVQ is 2.19 dB below plain FQ-2',
          f'{SIMVQ_IBQ}/ablation.csv',
          [None, lambda get: -mean_diff('fq2_simvq@{seed}:psnr',
                                        'fq2_plain@{seed}:psnr')(get), None]),
]

LEVERS = f'{RESULTS}/cpu_recipe/levers.json'
COLOUR = f'{RESULTS}/cpu_recipe/colour_shift.json'
PIXEL_SEEDS = f'{RESULTS}/cpu_recipe/three_seeds_pixel_norm.json'
TRUNK = f'{RESULTS}/cpu_recipe/trunk_levers.json'
ZOO_METRICS = 'fqzoo/zoo_assets/metrics.json'
RUN = ['runs.{name}.psnr', 'runs.{name}.whole/psnr', 'runs.{name}.tiled/psnr']
USAGE_PAIR = ['runs.{name}.usage_0', 'runs.{name}.usage_1']
PHOTO_SHIFTS = ['runs.{name}.whole/colour_shift',
                'runs.{name}.whole/coffee/colour_shift',
                'runs.{name}.whole/grace_hopper/colour_shift']
COLOUR_RUNS = ('baseline', 'grey', 'l1', 'lowpass', 'chroma', 'mild jitter',
               'no odd photos', 'long cosine', 'long, restarts stop',
               'long, mild jitter')


def run_line(run: str) -> List[str]:
    """Seed, PSNRs, colour shifts (mean, coffee, grace_hopper) and usages
    of one run, as a table line quotes them."""
    return [None] + [k.format(name=run) for k in RUN + PHOTO_SHIFTS
                     + USAGE_PAIR]


def seed_goal(key: str, scale: float = 1) -> List[Callable]:
    """Seeds 0, 1, 2, mean and std of ``key`` in a three-seed record."""
    parts = ['seeds.0', 'seeds.1', 'seeds.2', 'mean', 'std']
    return [lambda get, p=p: scale * get(f'{p}.{key}') for p in parts]


FIGURES += [
    # ------------------------------------ docs/cpu_recipe.md: the levers
    Quote('docs/cpu_recipe.md', 'train a 1-million-parameter FQGAN',
          ZOO_METRICS, [lambda get: get('fqzoo-photos-fq2.parameters') / 1e6]),
    Quote('docs/cpu_recipe.md', "the quantizer ablation's configs spread by "
          '0.2 to 2.0 dB over three seeds', CPU_RECIPE,
          [lambda get: min(get(f'{CPU_RECIPE}/ablation_summary.csv'
                               '#*:psnr_std')),
           lambda get: max(get(f'{CPU_RECIPE}/ablation_summary.csv'
                               '#*:psnr_std'))]),
    Quote('docs/cpu_recipe.md', 'gave 18.6 dB on the patches and 14.7 dB with '
          'a colour shift of about 30/255 on the whole photos', LEVERS,
          ['old_recipe.psnr', 'old_recipe.whole/psnr',
           'old_recipe.whole/colour_shift', None]),
    Quote('docs/cpu_recipe.md', 'comes out 2.6 dB worse than the same photo '
          'tiled (14.2 vs 16.8 dB) and its colours shift by 43/255 (24/255 '
          'tiled)', LEVERS,
          [diff('runs.r1_group.tiled/psnr', 'runs.r1_group.whole/psnr'),
           'runs.r1_group.whole/psnr', 'runs.r1_group.tiled/psnr',
           'runs.r1_group.whole/colour_shift', None,
           'runs.r1_group.tiled/colour_shift', None]),
    Quote('docs/cpu_recipe.md', '1500 steps at batch 8 and a teacher loss 20x '
          'the reconstruction loss', LEVERS,
          [None, None, 'teacher_infonce_over_reconstruction_loss']),
    Table('docs/cpu_recipe.md', '## The levers', LEVERS,
          {'patches PSNR': [RUN[0]], 'whole PSNR': [RUN[1]],
           'tiled PSNR': [RUN[2]], 'whole colour shift': [PHOTO_SHIFTS[0]],
           'usage 0 / 1': USAGE_PAIR},
          rows={**{name: dict(name=name) for name in (
              'r1_group', 'r2_pixel', 'r3_noperc', 'r3_scales',
              'r2_pixel_aug', 'r3_long', 'f2_perm', 'qs2500')},
              'r1_pixel': dict(name='r1_pixel', columns={'patches PSNR': [
                  'runs.r1_pixel.collapsed.codes_per_sub_codebook',
                  'runs.r1_pixel.collapsed.by_iteration']})}),
    Quote('docs/cpu_recipe.md', 'at least as well as the tiled one (21.3 vs '
          '20.6 dB at 600 iterations', LEVERS,
          ['runs.r2_pixel.whole/psnr', 'runs.r2_pixel.tiled/psnr', None]),
    Quote('docs/cpu_recipe.md', 'the trunk alone gains 3.3 dB on the patches',
          LEVERS, [diff('runs.r2_pixel.psnr', 'runs.r1_group.psnr')]),
    Quote('docs/cpu_recipe.md', '+0.9 dB on the patches without it; its own '
          'metric gets worse (EfficientNet perceptual distance 0.57 -> 0.63)',
          LEVERS, [diff('runs.r3_noperc.psnr', 'runs.r2_pixel.psnr'),
                   'runs.r2_pixel.effnet_perceptual',
                   'runs.r3_noperc.effnet_perceptual']),
    Quote('docs/cpu_recipe.md', '**Multi-scale crops: kept** (+0.45 dB)',
          LEVERS, [diff('runs.r3_scales.psnr', 'runs.r2_pixel.psnr')]),
    Quote('docs/cpu_recipe.md', '(near-grey reconstructions, 16.4 dB, colour '
          'shift 34/255). Random channel order alone, over the full 1500 '
          'iterations, did the same (16.7 dB, 33.8/255)', LEVERS,
          ['runs.r2_pixel_aug.psnr', 'runs.r2_pixel_aug.whole/colour_shift',
           None, None, 'runs.f2_perm.psnr', 'runs.f2_perm.whole/colour_shift',
           None]),
    Quote('docs/cpu_recipe.md', 'At weight 0.5 its InfoNCE term was about 20x '
          'the reconstruction loss', LEVERS,
          [None, 'teacher_infonce_over_reconstruction_loss']),
    Quote('docs/cpu_recipe.md', '600 -> 1500 iterations: +2.6 dB and the '
          'colour shift 11.5 -> 8.7 (r3_long)', LEVERS,
          [None, None, diff('runs.r3_long.psnr', 'runs.r2_pixel.psnr'),
           'runs.r2_pixel.whole/colour_shift',
           'runs.r3_long.whole/colour_shift']),
    # ------------------------------ docs/cpu_recipe.md: the colour shift
    Quote('docs/cpu_recipe.md', 'the whole-photo colour shift (7.3/255 '
          'against <= 6)', COLOUR,
          ['runs.baseline.whole/colour_shift', None, None]),
    Table('docs/cpu_recipe.md', '| run | change | iterations |', COLOUR,
          {'patches PSNR': [RUN[0]], 'whole PSNR': [RUN[1]],
           'tiled PSNR': [RUN[2]],
           'colour shift (coffee / grace_hopper)': PHOTO_SHIFTS,
           'usage 0 / 1': USAGE_PAIR},
          rows={('**long cosine**' if name == 'long cosine' else name):
                dict(name=name) for name in COLOUR_RUNS}),
    Quote('docs/cpu_recipe.md', '1.0 dB on the patches and 0.7 dB on the '
          'whole photos, and the seed-0 shift falls to 6.4/255. Seeds 1 and 2 '
          'of the same config (table below) give 8.7 and 8.0: over three '
          'seeds the shift is 7.7 +- 1.2/255', COLOUR,
          [diff('runs.long cosine.psnr', 'runs.baseline.psnr'),
           diff('runs.long cosine.whole/psnr', 'runs.baseline.whole/psnr'),
           None, 'runs.long cosine.whole/colour_shift', None, None, None,
           *[f'{PIXEL_SEEDS}#{part}.whole/colour_shift'
             for part in ('seeds.1', 'seeds.2', 'mean', 'std')], None]),
    Quote('docs/cpu_recipe.md', 'make coffee too blue (+3.7 to +10.2 levels) '
          'and grace_hopper not blue enough (-5.5 to -10.9)', COLOUR,
          [f'blue_shift_ranges.levers_and_recipe_seeds.whole/{photo}'
           f'/blue_shift.{end}' for photo in ('coffee', 'grace_hopper')
           for end in ('from', 'to')]),
    Quote('docs/cpu_recipe.md', 'seeds 0 and 1: +4.8 to +9.5 and -5.8 to '
          '-14.6', COLOUR,
          [None, None] + [
              f'blue_shift_ranges.photo_ablation_600_iterations_seeds_0_1'
              f'.whole/{photo}/blue_shift.{end}'
              for photo in ('coffee', 'grace_hopper') for end in ('from', 'to')]),
    Quote('docs/cpu_recipe.md', '(coffee 3.7-15.0, grace_hopper 5.5-10.9, as '
          'the largest channel)', COLOUR,
          [extreme(pick, COLOUR_RUNS, lambda get, name, p=photo: get(
              f'runs.{name}.whole/{p}/colour_shift'))
           for photo in ('coffee', 'grace_hopper') for pick in (min, max)]),
    Quote('docs/cpu_recipe.md', '(coffee +6.7 blue, grace_hopper -5.9 blue, '
          'against +7.1 / -5.7 through the codes)', COLOUR,
          [f'runs.long cosine.{part}whole/{photo}/blue_shift'
           for part in ('continuous_latents.', '')
           for photo in ('coffee', 'grace_hopper')]),
    Quote('docs/cpu_recipe.md', 'fixed coffee (3.7) and broke grace_hopper '
          '(9.7)', COLOUR,
          ['runs.no odd photos.whole/coffee/colour_shift',
           'runs.no odd photos.whole/grace_hopper/colour_shift']),
    Quote('docs/cpu_recipe.md', 'do no harm** (0.1/255 either way)', COLOUR,
          [lambda get: abs(get('runs.long, restarts stop.whole/colour_shift')
                           - get('runs.long cosine.whole/colour_shift')),
           None]),
    # ------------------------ docs/cpu_recipe.md: the trunk without norms
    *[Quote('docs/cpu_recipe.md', text, TRUNK, run_line(run))
      for run, text in (
          ('fresh crops@0', '| 0 | 24.61 | 24.19 | 23.99 | 8.4 (5.6 / 11.2) | '
                            '0.74 / 0.77 |'),
          ('fresh crops@1', '| | | 1 | 24.22 | 23.71 | 23.57 | 10.5 (9.6 / '
                            '11.3) | 0.78 / 0.69 |'),
          ('RMS norm@0', '| 0 | 24.66 | 24.11 | 23.83 | 9.1 (8.2 / 10.1) | '
                         '0.76 / 0.80 |'))],
    Quote('docs/cpu_recipe.md', '(the table in "The recipe" below: 25.05 / '
          '24.43 / 24.39 dB and 6.4 / 8.7 / 8.0)', PIXEL_SEEDS,
          [f'seeds.{s}.psnr' for s in (0, 1, 2)]
          + [f'seeds.{s}.whole/colour_shift' for s in (0, 1, 2)]),
    Quote('docs/cpu_recipe.md', 'patches +1.03 / +0.52 / +1.10 dB, whole '
          'photos +1.12 / +1.23 / +1.12 dB, colour shift -3.0 / -1.9 / -0.8 '
          'levels', THREE_SEEDS,
          [diff(f'seeds.{s}.{key}', f'{PIXEL_SEEDS}#seeds.{s}.{key}')
           for key in ('psnr', 'whole/psnr', 'whole/colour_shift')
           for s in (0, 1, 2)]),
    Quote('docs/cpu_recipe.md', 'Over three seeds the colour shift is 5.8 +- '
          '2.1/255: inside the goal on average, but seeds 1 and 2 (6.8 and '
          '7.2)', THREE_SEEDS,
          ['mean.whole/colour_shift', 'std.whole/colour_shift', None, None,
           None, 'seeds.1.whole/colour_shift', 'seeds.2.whole/colour_shift']),
    Quote('docs/cpu_recipe.md', '(coffee too blue by +5.7 and +8.0, '
          'grace_hopper short of blue by -7.7 and -6.4)', TRUNK,
          [f'no_norm.blue_shift.{s}.whole/{photo}/blue_shift'
           for photo in ('coffee', 'grace_hopper') for s in (1, 2)]),
    Quote('docs/cpu_recipe.md', 'as bad as the LayerNorm (9.1/255 on seed 0)',
          TRUNK, ['runs.RMS norm@0.whole/colour_shift', None, None]),
    Quote('docs/cpu_recipe.md', 'whole and tiled photos still agree (25.11 vs '
          '24.78 dB on average', THREE_SEEDS,
          ['mean.whole/psnr', 'mean.tiled/psnr']),
    Quote('docs/cpu_recipe.md', '(3 seeds, `docs/ablations.md`: every config '
          'gains 0.2-1.4 dB', CPU_NONE,
          [None, extreme(min, TABLE3, _gain), extreme(max, TABLE3, _gain)]),
    Quote('docs/cpu_recipe.md', 'Wall time: the three runs took 17-18 minutes '
          'each with one thread beside another run', TRUNK,
          ['no_norm.wall_time_min.from', 'no_norm.wall_time_min.to']),
    # ----------------- docs/cpu_recipe.md: with per-position norms, 3 seeds
    Quote('docs/cpu_recipe.md', '| held-out patch PSNR | >= 24 dB | 25.05 dB '
          '| 24.43 dB | 24.39 dB | 24.62 ± 0.37 dB | yes |', PIXEL_SEEDS,
          [None] + seed_goal('psnr')),
    *[Quote('docs/cpu_recipe.md', text, PIXEL_SEEDS,
            [None, None] + seed_goal(f'usage_{g}', 100))
      for g, text in (
          (0, '| usage, sub-codebook 0 | >= 80% | 89% | 83% | 83% | 85 ± 4% '
              '| yes |'),
          (1, '| usage, sub-codebook 1 | >= 80% | 83% | 86% | 86% | 85 ± 1% '
              '| yes |'))],
    Quote('docs/cpu_recipe.md', '| whole photos, PSNR | >= 23 dB | 24.32 dB | '
          '23.56 dB | 23.99 dB | 23.96 ± 0.38 dB | yes |', PIXEL_SEEDS,
          [None] + seed_goal('whole/psnr')),
    Quote('docs/cpu_recipe.md', '| whole photos, colour shift | <= 6/255 | '
          '6.4/255 | 8.7/255 | 8.0/255 | 7.7 ± 1.2/255 | no |', PIXEL_SEEDS,
          [None, None] + [v for part in seed_goal(
              'whole/colour_shift')[:3] for v in (part, None)]
          + seed_goal('whole/colour_shift')[3:] + [None]),
    Quote('docs/cpu_recipe.md', '| colour shift, coffee / grace_hopper | | '
          '7.1 / 5.7 | 7.1 / 10.2 | 7.1 / 8.8 | 7.1 / 8.2 | |', PIXEL_SEEDS,
          [f'{part}.whole/{photo}/colour_shift'
           for part in ('seeds.0', 'seeds.1', 'seeds.2', 'mean')
           for photo in ('coffee', 'grace_hopper')]),
    Quote('docs/cpu_recipe.md', 'These took 20-23 minutes each with one '
          'thread beside another run; a 2500-iteration run of that model took '
          '11.6 minutes on the quiet machine', PIXEL_SEEDS,
          ['wall_time_min.from', 'wall_time_min.to', None,
           f'{LEVERS}#runs.qs2500.wall_time_min']),
    # --------------------- docs/cpu_recipe.md: the 1500-iteration recipe
    *[Quote('docs/cpu_recipe.md', text, COLOUR, values) for text, values in (
        ('| held-out patch PSNR | >= 24 dB | 24.06 dB | yes |',
         [None, 'runs.baseline.psnr']),
        ('| usage per sub-codebook | >= 80% | 83% / 81% | yes |',
         [None, percent('runs.baseline.usage_0'),
          percent('runs.baseline.usage_1')]),
        ('| whole photos, PSNR | >= 23 dB | 23.61 dB | yes |',
         [None, 'runs.baseline.whole/psnr']),
        ('| whole photos, colour shift | <= 6/255 | 7.3/255 | no |',
         [None, None, 'runs.baseline.whole/colour_shift', None]),
        ('| wall time | <= 15 min | 14.6 min | yes |',
         [None, 'runs.baseline.wall_time_min']))],
    Quote('docs/cpu_recipe.md', 'Whole vs tiled on that run: 23.61 vs 23.19 '
          'dB (coffee 24.67 vs 24.40, grace_hopper 22.54 vs 21.98)', COLOUR,
          [f'runs.baseline.{kind}/{photo}psnr' for photo in (
              '', 'coffee/', 'grace_hopper/') for kind in ('whole', 'tiled')]),
    Quote('docs/cpu_recipe.md', 'bought +0.4 dB on the patches and +0.3 dB on '
          'the whole photos, but the colour shift only went from 7.3 to '
          '7.0/255', COLOUR,
          [diff(f'{LEVERS}#runs.qs2500.psnr', 'runs.baseline.psnr'),
           diff(f'{LEVERS}#runs.qs2500.whole/psnr', 'runs.baseline.whole/psnr'),
           'runs.baseline.whole/colour_shift',
           f'{LEVERS}#runs.qs2500.whole/colour_shift', None]),
]

BENCH = f'{RESULTS}/benchmarks'
QUANT = f'{BENCH}/quantizers.json'
BY_SIZE = f'{BENCH}/code_search_by_size.json'
IBQ = f'{BENCH}/ibq_memory.json'
GEN = f'{BENCH}/generators.json'
EVAL_MEM = f'{BENCH}/eval_memory.json'
DEMO = f'{BENCH}/demo.json'
SEARCH = ('blocked ms', 'blocked peak MiB', 'naive ms', 'naive peak MiB',
          'cdist ms', 'speed-up vs naive', 'speed-up vs cdist')
BY_SIZE_COLUMNS = ('nearest_code ms', 'peak MiB', 'blocked forced ms',
                   'naive ms', 'naive peak MiB', 'cdist ms',
                   'speed-up vs naive', 'speed-up vs cdist')
SMALL_K = ('512', '1024', '4096')


def cells(table: str, *headers: str) -> Dict[str, List[str]]:
    """Each column's cell is the row's figure under that header."""
    return {h: [f'{table}.{{name}}.{h}'] for h in headers}


def rate(key: str) -> Callable:
    """Tokens/s as the quantizer benchmark writes them (5.91M, 815k)."""
    def scaled(get, **row):
        value = get(key.format(**row))
        return value / 1e6 if value >= 1e6 else value / 1e3
    return scaled


def ratio(a: str, b: str) -> Callable:
    """``a / b``."""
    return lambda get, **row: get(a.format(**row)) / get(b.format(**row))


def ibq_kd_mib(get, name):
    """The codebook's size in MiB, from the row's K and D."""
    return 2 ** get(f'rows.{name}.log2_K') * get(f'rows.{name}.D') * 4 / 2**20


def ibq_blocks_mib(get, name):
    """Peak memory above the two ``[K, D]`` gradient buffers."""
    return get(f'rows.{name}.peak extra MiB') - 2 * ibq_kd_mib(get, name)


FQZOO_IBQ = [f'fqzoo (blocked) / 2^{k} / {d}' for k in (14, 16, 17, 18)
             for d in (256, 8)]
IBQ_D8 = [(f'released / 2^{k} / 8', f'fqzoo (blocked) / 2^{k} / 8')
          for k in (14, 16, 17)]


def ibq_step_ratio(pair):
    return lambda get: get(f'rows.{pair[0]}.step s') / get(
        f'rows.{pair[1]}.step s')


def _tiny_rest(get):
    """The cached tiny 8x8 call's time outside the backbone, in s."""
    return (get('results.far_tiny_fmnist / 8x8 / cached.s / batch')
            * (1 - get('breakdown.far_tiny_fmnist / 8x8.backbone') / 100))


BUSY = ('tokenizer view', '8 FAR samples')


def _busy_slowdown(get, what):
    return (get(f'busy_box_in_process.{what}.2 threads')
            / get(f'busy_box_in_process.{what}.1 thread'))


FIGURES += [
    # ------------------------------------- docs/benchmarks.md: quantizers
    Table('docs/benchmarks.md', '### Throughput and memory, 1 thread', QUANT,
          {'fwd tok/s': [rate('throughput_1_thread.{name}.fwd tok/s')],
           'fwd+bwd tok/s': [rate('throughput_1_thread.{name}.fwd+bwd tok/s')],
           **cells('throughput_1_thread', 'fwd peak MiB', 'fwd+bwd peak MiB')},
          key=('quantizer', 'config', 'codes')),
    Table('docs/benchmarks.md', '1 thread:', QUANT,
          cells('search_1_thread', *SEARCH)),
    Table('docs/benchmarks.md', '2 threads, same command with', QUANT,
          cells('search_2_threads', *SEARCH)),
    Quote('docs/benchmarks.md', 'blocked 55-60 ms (token x code blocks of '
          '4096x256 ... 8192x512), naive 1.51 s, cdist 0.62 s, that is 25-27x '
          'faster than the naive search and 10.5-11.3x faster than '
          '`torch.cdist`', QUANT,
          ['interleaved.blocked_ms.from', 'interleaved.blocked_ms.to', None,
           None, 'interleaved.naive_s', 'interleaved.cdist_s',
           'interleaved.speedup_vs_naive.from', 'interleaved.speedup_vs_naive.to',
           'interleaved.speedup_vs_cdist.from',
           'interleaved.speedup_vs_cdist.to']),
    Quote('docs/benchmarks.md', 'the blocked search is 17-27x faster than the '
          'common full-matrix implementation and 10-11x faster than '
          '`torch.cdist` with 1 or 2 threads when the machine is not '
          'overloaded (9.8x vs cdist in the 1-thread table above), with a '
          'peak extra memory of a few MiB instead of 3 GiB. Its cost floor is '
          'the `[N, K]` matrix multiply itself (~45 ms here); the recovery '
          "`argmin` inside each token's winning block adds ~10 ms", QUANT,
          ['summary.speedup_vs_naive.from', 'summary.speedup_vs_naive.to',
           'summary.speedup_vs_cdist.from', 'summary.speedup_vs_cdist.to',
           None, None, 'search_1_thread.16384.speed-up vs cdist', None,
           lambda get: get('search_1_thread.16384.naive peak MiB') / 1024,
           'summary.matmul_floor_ms', 'summary.argmin_recovery_ms']),
    Table('docs/benchmarks.md', 'searches. 2 threads, best of 5, load '
          'average 8-9', BY_SIZE, cells('loaded', *BY_SIZE_COLUMNS),
          key=('N', 'K')),
    Quote('docs/benchmarks.md', 'the shipped search is now 4-6x faster than '
          'the blocked one at N = 16384', BY_SIZE,
          [extreme(pick, SMALL_K, lambda get, k: get(
              f'loaded.16384 / {k}.blocked forced ms')
              / get(f'loaded.16384 / {k}.nearest_code ms'))
           for pick in (min, max)] + [None]),
    Quote('docs/benchmarks.md', 'faster except at N = 16384, K = 4096 (0.8x)',
          BY_SIZE, [None, None, 'loaded.16384 / 4096.speed-up vs cdist']),
    Quote('docs/benchmarks.md', 'took 64-162 ms at N = 1024 and 0.4-7.9 s at '
          'N = 16384 between calls', BY_SIZE,
          ['loaded_spread_between_calls.blocked_ms_at_N_1024.from',
           'loaded_spread_between_calls.blocked_ms_at_N_1024.to', None,
           'loaded_spread_between_calls.blocked_s_at_N_16384.from',
           'loaded_spread_between_calls.blocked_s_at_N_16384.to', None]),
    Table('docs/benchmarks.md', '(9.9 then 24.3 ms):', BY_SIZE,
          cells('quiet', *BY_SIZE_COLUMNS), key=('N', 'K')),
    Quote('docs/benchmarks.md', 'the second agreed within 10% except for the '
          'blocked path at N = 16384, K = 1024 (9.9 then 24.3 ms)', BY_SIZE,
          ['quiet_second_run.agreement_percent', None, None,
           'quiet_second_run.blocked_forced_ms_at_16384_1024.first',
           'quiet_second_run.blocked_forced_ms_at_16384_1024.second']),
    Quote('docs/benchmarks.md', 'everywhere (1.2-19x) and than `torch.cdist` '
          'everywhere (1.1-10.5x)', BY_SIZE,
          [lambda get, c=c, pick=pick: pick(
              get(f'quiet.{n} / {k}.{c}') for n in ('1024', '16384')
              for k in (*SMALL_K, '16384'))
           for c in ('speed-up vs naive', 'speed-up vs cdist')
           for pick in (min, max)]),
    Quote('docs/benchmarks.md', 'the forced blocked path is 1.6-6.7x faster '
          'than the plain one that `nearest_code` picks, the reverse of the '
          'loaded table above (blocked 4-6x slower there)', BY_SIZE,
          [extreme(pick, SMALL_K, lambda get, k, t=t, a=a, b=b: get(
              f'{t}.16384 / {k}.{a}') / get(f'{t}.16384 / {k}.{b}'))
           for t, a, b in (('quiet', 'nearest_code ms', 'blocked forced ms'),
                           ('loaded', 'blocked forced ms', 'nearest_code ms'))
           for pick in (min, max)]),
    # ------------------------------------------ docs/benchmarks.md: IBQ
    Table('docs/benchmarks.md', 'adding them to it (`K x D MiB` is one of '
          'them)', IBQ,
          {'N': ['rows.{name}.N'], 'K x D MiB': [ibq_kd_mib],
           **cells('rows', 'step s', 'peak extra MiB')},
          key=('implementation', 'K', 'D')),
    Quote('docs/benchmarks.md', 'float32 matrices: 4.5 GiB at `2^17`', IBQ,
          [lambda get: get('rows.released / 2^17 / 256.peak extra MiB') / 1024,
           None, None]),
    Quote('docs/benchmarks.md', 'gradient buffers plus 28-56 MiB of blocks '
          'whatever `K`, so a training step at `K = 2^18` takes 61 MiB with '
          "the 8-channel codes of fqzoo's FQ sub-codebooks and 548 MiB (2 x "
          '256 MiB of codebook gradient + 36 MiB) with the released '
          '256-channel codes', IBQ,
          [extreme(min, FQZOO_IBQ, ibq_blocks_mib),
           extreme(max, FQZOO_IBQ, ibq_blocks_mib), None, None,
           'rows.fqzoo (blocked) / 2^18 / 8.peak extra MiB', None,
           'rows.fqzoo (blocked) / 2^18 / 256.peak extra MiB', None,
           lambda get: ibq_kd_mib(get, 'fqzoo (blocked) / 2^18 / 256'),
           lambda get: ibq_blocks_mib(get, 'fqzoo (blocked) / 2^18 / 256'),
           None]),
    Quote('docs/benchmarks.md', "With 8-channel codes fqzoo's step is also "
          '3.5-4x faster', IBQ,
          [None, lambda get: min(ibq_step_ratio(p)(get) for p in IBQ_D8),
           lambda get: max(ibq_step_ratio(p)(get) for p in IBQ_D8)]),
    Quote('docs/benchmarks.md', 'the release 1.4x faster at `2^16`, fqzoo '
          '1.1x at `2^14` and 1.8x at `2^17`', IBQ,
          [ibq_step_ratio(('fqzoo (blocked) / 2^16 / 256',
                           'released / 2^16 / 256')), None, None,
           ibq_step_ratio(('released / 2^14 / 256',
                           'fqzoo (blocked) / 2^14 / 256')), None, None,
           ibq_step_ratio(('released / 2^17 / 256',
                           'fqzoo (blocked) / 2^17 / 256')), None, None]),
    # ------------------------------- docs/benchmarks.md: token generators
    Table('docs/benchmarks.md', '### Results, batch 8, cfg 2.0', GEN,
          {'params': ['results.{name}.params (M)'],
           **cells('results', 's / batch', 'images/s', 'tokens/s',
                   'speedup')},
          key=('config', 'grid', 'cache')),
    Table('docs/benchmarks.md', 'Where the cached time goes (the extra cached '
          'call', GEN,
          cells('breakdown', 'that call, s', 'backbone', 'head', 'sampling',
                'embed', 'other'), key=('config', 'grid')),
    Quote('docs/benchmarks.md', 'one FAR-B 16x16 cached call is ~2 minutes '
          'here', GEN,
          [None, lambda get: get('results.far_b_fqgan_dual / 16x16 / cached'
                                 '.s / batch') / 60]),
    Quote('docs/benchmarks.md', 'the cached call only (125.0 s, and 130.6 s '
          'in the breakdown call)', GEN,
          ['results.far_b_fqgan_dual / 16x16 / cached.s / batch',
           'breakdown.far_b_fqgan_dual / 16x16.that call, s']),
    Quote('docs/benchmarks.md', '(tiny: 3.7x at 8x8 -> 9.3x at 16x16, '
          'measured; FAR-B: 3.2x at 4x4 -> 7.8x at 8x8, measured)', GEN,
          [v for config, grids in (('far_tiny_fmnist', ('8x8', '16x16')),
                                   ('far_b_fqgan_dual', ('4x4', '8x8')))
           for grid in grids
           for v in (f'results.{config} / {grid} / cached.speedup', None)]),
    Quote('docs/benchmarks.md', 'so it costs at least the 8x8 average of '
          '421.2 / 64 = 6.6 s', GEN,
          [None, 'results.far_b_fqgan_dual / 8x8 / uncached.s / batch', None,
           lambda get: get('results.far_b_fqgan_dual / 8x8 / uncached'
                           '.s / batch') / 64]),
    Quote('docs/benchmarks.md', 'at least 1685 / 125.0 = **13.5x** (12.9x '
          'against the slower 130.6 s cached call)', GEN,
          [lambda get: 4 * get('results.far_b_fqgan_dual / 8x8 / uncached'
                               '.s / batch'),
           'results.far_b_fqgan_dual / 16x16 / cached.s / batch',
           lambda get: 4 * get('results.far_b_fqgan_dual / 8x8 / uncached'
                               '.s / batch')
           / get('results.far_b_fqgan_dual / 16x16 / cached.s / batch'),
           lambda get: 4 * get('results.far_b_fqgan_dual / 8x8 / uncached'
                               '.s / batch')
           / get('breakdown.far_b_fqgan_dual / 16x16.that call, s'),
           'breakdown.far_b_fqgan_dual / 16x16.that call, s']),
    Quote('docs/benchmarks.md', 'took 29.1 s instead of 54.2 s (0.46 s per '
          'position instead of 0.85 s; the 16x16 cached call ran at 0.49 s '
          "per position). The table's 7.8x uses the timed call; with the "
          '29.1 s it would read 14.5x', GEN,
          ['breakdown.far_b_fqgan_dual / 8x8.that call, s',
           'results.far_b_fqgan_dual / 8x8 / cached.s / batch',
           lambda get: get('breakdown.far_b_fqgan_dual / 8x8.that call, s')
           / 64,
           lambda get: get('results.far_b_fqgan_dual / 8x8 / cached'
                           '.s / batch') / 64, None,
           lambda get: get('results.far_b_fqgan_dual / 16x16 / cached'
                           '.s / batch') / 256,
           'results.far_b_fqgan_dual / 8x8 / cached.speedup',
           'breakdown.far_b_fqgan_dual / 8x8.that call, s',
           ratio('results.far_b_fqgan_dual / 8x8 / uncached.s / batch',
                 'breakdown.far_b_fqgan_dual / 8x8.that call, s')]),
    Quote('docs/benchmarks.md', 'met at the tiny size (9.3x, measured) and at '
          'the B size (>= 13.5x', GEN,
          ['results.far_tiny_fmnist / 16x16 / cached.speedup',
           'results.far_b_fqgan_dual / 16x16 / cached.speedup']),
    Quote('docs/benchmarks.md', 'Below 5x: tiny at 8x8 (3.7x) and FAR-B at '
          '4x4 (3.2x)', GEN,
          [None, None, 'results.far_tiny_fmnist / 8x8 / cached.speedup', None,
           'results.far_b_fqgan_dual / 4x4 / cached.speedup']),
    Quote('docs/benchmarks.md', 'That is 38% of the cached tiny step and 28% '
          'of the cached FAR-B step', GEN,
          [lambda get, grid=grid, config=config: 100 - get(
              f'breakdown.{config} / {grid}.backbone')
           for config, grid in (('far_tiny_fmnist', '8x8'),
                                ('far_b_fqgan_dual', '4x4'))]),
    Quote('docs/benchmarks.md', 'the backbone alone runs 5.3x faster with the '
          'cache ((1.841 - 0.19) / (0.500 x 0.62), the head, sampling and the '
          'rest taken as 0.19 s in both modes), the whole call 3.7x', GEN,
          [lambda get: (get('results.far_tiny_fmnist / 8x8 / uncached'
                            '.s / batch') - _tiny_rest(get))
           / (get('results.far_tiny_fmnist / 8x8 / cached.s / batch')
              * get('breakdown.far_tiny_fmnist / 8x8.backbone') / 100),
           'results.far_tiny_fmnist / 8x8 / uncached.s / batch', _tiny_rest,
           'results.far_tiny_fmnist / 8x8 / cached.s / batch',
           lambda get: get('breakdown.far_tiny_fmnist / 8x8.backbone') / 100,
           _tiny_rest, 'results.far_tiny_fmnist / 8x8 / cached.speedup']),
    Quote('docs/benchmarks.md', "the head's share of the cached time, "
          '26.2-26.3% at 4x4 and 8x8', GEN,
          ['breakdown.far_b_fqgan_dual / 4x4.head',
           'breakdown.far_b_fqgan_dual / 8x8.head', None, None]),
    Quote('docs/benchmarks.md', "The trunk's share rises at 16x16 (73.3%)",
          GEN, [None, 'breakdown.far_b_fqgan_dual / 16x16.backbone']),
    Quote('docs/benchmarks.md', 'The trace is dominated by `aten::mm` (32%) '
          'and the CPU flash-attention kernel (16%)', GEN,
          ['profile_tiny_16x16.aten::mm', 'profile_tiny_16x16.flash_attention']),
    Quote('docs/benchmarks.md', '(tiny, ~50 us per small matmul under this '
          'load)', GEN, ['small_matmul_us']),
    # ----------------------------- docs/benchmarks.md: evaluation memory
    Table('docs/benchmarks.md', 'Shared 2-core AMD EPYC VM at load 7-12',
          EVAL_MEM, cells('rows', 'state KiB', 'state B/image', 'RSS MiB',
                          'peak RSS MiB', 's'), key=('metric', 'images')),
    Quote('docs/benchmarks.md', 'RSS includes about 760 MiB of imported '
          'libraries', EVAL_MEM, ['imported_libraries_rss_mib']),
    Quote('docs/benchmarks.md', 'keep one Python float per image (about 32 '
          'B), TokenNLL a list of G floats (144 B): 50k images cost 1.5 MiB '
          'and 7 MiB. RSS stays within 4 MiB of its start over 8192 images',
          EVAL_MEM,
          ['rows.PSNR / 8192.state B/image',
           'rows.TokenNLL / 8192.state B/image', None,
           lambda get: 50000 * get('rows.PSNR / 8192.state B/image') / 2**20,
           lambda get: 50000 * get('rows.TokenNLL / 8192.state B/image')
           / 2**20,
           lambda get: max(
               get(f'rows.{m} / 8192.RSS MiB') - get(f'rows.{m} / 512.RSS MiB')
               for m in ('PSNR', 'SSIM', 'TokenNLL', 'CodebookUsage')), None]),
    Quote('docs/benchmarks.md', '(the 516 KiB at 512 images of the first run)',
          EVAL_MEM, ['first_run.CodebookUsage_state_KiB_at_512', None]),
    Quote('docs/benchmarks.md', 'plus per-sample dicts, 10.7 KiB (0.51 GiB for '
          '50k images)', EVAL_MEM,
          [lambda get: get('rows.OfflineFID / 16.state B/image') / 1024,
           lambda get: 50000 * get('rows.OfflineFID / 16.state B/image')
           / 2**30, None]),
    Quote('docs/benchmarks.md', "OfflineFID's peak RSS (1.91 GiB)", EVAL_MEM,
          [lambda get: get('rows.OfflineFID / 64.peak RSS MiB') / 1024]),
    # ------------------------------------- docs/benchmarks.md: the demo
    Table('docs/benchmarks.md', 'python tools/benchmarks/demo.py --repeat 3 '
          '--threads 2', DEMO, cells('rows', '1 thread', '2 threads')),
    Quote('docs/benchmarks.md', '2 threads ran 4-5 times slower than 1 in '
          'process (tokenizer view 6.8 against 1.3 s, 8 FAR samples 1.66 '
          'against 0.37 s)', DEMO,
          [None, extreme(min, BUSY, _busy_slowdown),
           extreme(max, BUSY, _busy_slowdown), None,
           'busy_box_in_process.tokenizer view.2 threads',
           'busy_box_in_process.tokenizer view.1 thread', None,
           'busy_box_in_process.8 FAR samples.2 threads',
           'busy_box_in_process.8 FAR samples.1 thread']),
    # ---------------------------------------------- README: the demo
    Quote('README.md', 'it starts in about 7 s', DEMO,
          ['rows.start-up: process start to the page answering (torch, '
           'Gradio, five models).1 thread']),
    Quote('README.md', '(18 with one thread on a busy machine)', TRUNK,
          ['no_norm.wall_time_min.to']),
    Quote('README.md', 'This is a 1-million-parameter model', ZOO_METRICS,
          [lambda get: get('fqzoo-photos-fq2.parameters') / 1e6]),
]

TOKENIZERS = f'{RESULTS}/generation/tokenizers.json'
FLOWER = f'{RESULTS}/demo/flower.json'
SHIPPED_WALL = f'{RESULTS}/demo/train_wall_time.json'
SHIPPED_PSNR = ('whole/psnr', 'whole/coffee/psnr', 'whole/grace_hopper/psnr',
                'tiled/psnr', 'tiled/coffee/psnr', 'tiled/grace_hopper/psnr')
SHIPPED_SHIFT = tuple(k.replace('psnr', 'colour_shift') for k in SHIPPED_PSNR)
GENERATORS = ('fqzoo-fmnist-far', 'fqzoo-fmnist-ar')


def item(key: str, index: int) -> Callable:
    """Element ``index`` of a list in the source (fqzoo/zoo_assets/
    metrics.json keeps NLL, usage and perplexity per sub-codebook)."""
    return lambda get, **row: get(key.format(**row))[index]


def nll_mean(model: str) -> Callable:
    return lambda get: statistics.mean(get(f'{model}.fp16.nll'))


def fp16_gap(pairs: Sequence[tuple]) -> Callable:
    """The largest ``|float32 - float16|`` over (model, metric) pairs; a
    metric that is a list counts each element."""
    def gap(get):
        found = []
        for model, key in pairs:
            a, b = get(f'{model}.fp32.{key}'), get(f'{model}.fp16.{key}')
            a, b = (a, b) if isinstance(a, list) else ([a], [b])
            found += [abs(x - y) for x, y in zip(a, b)]
        return max(found)
    return gap


def redraw_gap(metric: str, pick: Callable) -> Callable:
    """How far another seed's float32 draw moves a CFG-3 sample metric."""
    return lambda get: pick(abs(get(f'{model}.fp32.cfg3.{metric}')
                                - get(f'{model}.fp32_seed_100000.cfg3.{metric}'))
                            for model in GENERATORS)


FIGURES += [
    # ------------------------------------- docs/zoo.md: fqzoo's own rows
    Quote('docs/zoo.md', 'PSNR 26.18, SSIM 0.782 (held-out patches)',
          QUICKSTART, ['metrics.psnr', 'metrics.ssim']),
    *[Quote('docs/zoo.md', f'PSNR {psnr}, SSIM {ssim} (Fashion-MNIST test)',
            TOKENIZERS, [f'{name}.psnr', f'{name}.ssim'])
      for name, psnr, ssim in (('fq2', '25.65', '0.863'),
                               ('vq', '25.69', '0.867'))],
    *[Quote('docs/zoo.md', text, FAR_HEADS,
            [f'{name}:nll_mean', None, f'{name}:fmnist_class_accuracy@cfg3.0_mean',
             f'{name}:fid_fmnist_classifier@cfg3.0_mean'])
      for name, text in (
          ('ar_head', 'held-out NLL 2.133; cfg 3: class acc. 0.905, '
                      'classifier FID 4.12'),
          ('ar_tiny_fmnist', 'held-out NLL 3.042; cfg 3: class acc. 0.938, '
                             'classifier FID 3.39'))],
    *[Quote('docs/zoo.md', f'PSNR {psnr} (first 2000 Fashion-MNIST test '
            'images)', ZOO_METRICS, [f'{name}.fp16.psnr', None])
      for name, psnr in (('fqzoo-fmnist-fq2', '25.64'),
                         ('fqzoo-fmnist-vq', '25.37'))],
    Quote('docs/zoo.md', 'held-out NLL 1.9651 (mean of 2.280 / 1.651); 500 '
          'samples at cfg 3: class acc. 0.758, classifier FID 7.199',
          ZOO_METRICS,
          [nll_mean('fqzoo-fmnist-far'), item('fqzoo-fmnist-far.fp16.nll', 0),
           item('fqzoo-fmnist-far.fp16.nll', 1), None, None,
           'fqzoo-fmnist-far.fp16.cfg3.class_accuracy',
           'fqzoo-fmnist-far.fp16.cfg3.classifier_fid']),
    Quote('docs/zoo.md', 'held-out NLL 2.65; 500 samples at cfg 3: class acc. '
          '0.806, classifier FID 6.039', ZOO_METRICS,
          [item('fqzoo-fmnist-ar.fp16.nll', 0), None, None,
           'fqzoo-fmnist-ar.fp16.cfg3.class_accuracy',
           'fqzoo-fmnist-ar.fp16.cfg3.classifier_fid']),
    Quote('docs/zoo.md', 'PSNR 23.254 (held-out photos, whole at 256)',
          ZOO_METRICS, ['fqzoo-photos-fq2.fp16.whole/psnr', None]),
    # ------------------------------------------------------ docs/demo.md
    Quote('docs/demo.md', '(flower above: 25.1 dB together, 14.8 and 19.9 dB '
          'alone)', FLOWER, ['psnr', 'branch_psnr.0', 'branch_psnr.1']),
    Quote('docs/demo.md', "starts in about 7 s (process start to the page "
          "answering: torch, Gradio and the five models), and 8 FAR + 8 AR "
          "samples come back in 0.8 s, one photo's tokenizer view in 1.3 s",
          DEMO,
          ['rows.start-up: process start to the page answering (torch, '
           'Gradio, five models).1 thread', None, None,
           "rows.page: 8 FAR + 8 AR samples, CFG 3 (the Sample button's "
           'request).1 thread',
           'rows.page: tokenizer view, one photo at 256x256 (three decodes)'
           '.1 thread']),
    Quote('docs/demo.md', 'with two, tokenizing was faster on the quiet box '
          '(0.9 s) but sampling slower (1.2 s), and on the busy box both ran '
          '4-5 times slower', DEMO,
          ['rows.page: tokenizer view, one photo at 256x256 (three decodes)'
           '.2 threads',
           "rows.page: 8 FAR + 8 AR samples, CFG 3 (the Sample button's "
           'request).2 threads',
           extreme(min, BUSY, _busy_slowdown),
           extreme(max, BUSY, _busy_slowdown)]),
    Table('docs/demo.md', '| name | what | file | trained | headline', ZOO_METRICS,
          {'trained': [None, '{name}.training_minutes']},
          rows={
              'fqzoo-photos-fq2': dict(name='fqzoo-photos-fq2', columns={
                  'headline (float16 file)': [
                      None, '{name}.fp16.whole/psnr',
                      '{name}.fp16.whole/colour_shift', None]}),
              'fqzoo-fmnist-fq2': dict(name='fqzoo-fmnist-fq2', columns={
                  'headline (float16 file)': [
                      '{name}.fp16.psnr', item('{name}.fp16.usage', 0),
                      item('{name}.fp16.usage', 1)]}),
              'fqzoo-fmnist-vq': dict(name='fqzoo-fmnist-vq', columns={
                  'headline (float16 file)': [
                      '{name}.fp16.psnr', item('{name}.fp16.usage', 0)]}),
              'fqzoo-fmnist-far': dict(name='fqzoo-fmnist-far', columns={
                  'headline (float16 file)': [
                      item('{name}.fp16.nll', 0), item('{name}.fp16.nll', 1),
                      None, '{name}.fp16.cfg3.class_accuracy',
                      '{name}.fp16.cfg3.classifier_fid']}),
              'fqzoo-fmnist-ar': dict(name='fqzoo-fmnist-ar', columns={
                  'headline (float16 file)': [
                      item('{name}.fp16.nll', 0), None,
                      '{name}.fp16.cfg3.class_accuracy',
                      '{name}.fp16.cfg3.classifier_fid']})}),
    Quote('docs/demo.md', "gen = get_model('fqzoo-fmnist-far')   # 1.5M "
          'parameters', ZOO_METRICS,
          [lambda get: get('fqzoo-fmnist-far.parameters') / 1e6]),
    Quote('docs/demo.md', 'Here it took 64 min of wall time beside other jobs',
          SHIPPED_WALL, ['wall_time_min']),
    Quote('docs/demo.md', '(25.64 / 25.37 dB against 25.65 / 25.69 on the '
          "whole test set), FAR's CFG-3 class accuracy is 0.758 against 0.905 "
          "there, and the photo tokenizer's whole-photo PSNR 23.25 dB against "
          "the quickstart's 25.68 (and a stronger colour shift, 6.5 against "
          '3.1/255)', ZOO_METRICS,
          ['fqzoo-fmnist-fq2.fp16.psnr', 'fqzoo-fmnist-vq.fp16.psnr',
           f'{TOKENIZERS}#fq2.psnr', f'{TOKENIZERS}#vq.psnr', None,
           'fqzoo-fmnist-far.fp16.cfg3.class_accuracy',
           f'{FAR_HEADS}#ar_head:fmnist_class_accuracy@cfg3.0_mean',
           'fqzoo-photos-fq2.fp16.whole/psnr',
           f'{QUICKSTART}#metrics.whole/psnr',
           'fqzoo-photos-fq2.fp16.whole/colour_shift',
           f'{QUICKSTART}#metrics.whole/colour_shift', None]),
    Quote('docs/demo.md', "PSNR agrees to 0.002 dB, usage exactly, perplexity "
          "to 0.02, the photos' colour shift to 0.02/255, the NLL to 1.4e-5 "
          'nats; class accuracy to 0.002 and classifier FID to 0.05, where '
          'drawing the same float32 samples again with other seeds moves them '
          'by 0.004-0.012 and 0.09', ZOO_METRICS,
          [fp16_gap([('fqzoo-fmnist-fq2', 'psnr'), ('fqzoo-fmnist-vq', 'psnr')]
                    + [('fqzoo-photos-fq2', k) for k in SHIPPED_PSNR]),
           fp16_gap([(m, 'perplexity')
                     for m in ('fqzoo-fmnist-fq2', 'fqzoo-fmnist-vq')]),
           fp16_gap([('fqzoo-photos-fq2', k) for k in SHIPPED_SHIFT]), None,
           lambda get: 1e5 * fp16_gap([(m, 'nll') for m in GENERATORS])(get),
           None,
           fp16_gap([(m, f'{cfg}.class_accuracy') for m in GENERATORS
                     for cfg in ('cfg1', 'cfg3')]),
           fp16_gap([(m, f'{cfg}.classifier_fid') for m in GENERATORS
                     for cfg in ('cfg1', 'cfg3')]),
           redraw_gap('class_accuracy', min), redraw_gap('class_accuracy', max),
           redraw_gap('classifier_fid', max)]),
]

GEN_RUN = f'{RESULTS}/generation/fmnist_run.json'
FAR_HEAD_NAMES = ('ar_head', 'linear_head', 'mlp_head')


def draws(model: str, metric: str) -> Callable:
    """The table's cfg-3 figure of ``model`` and its two redraws."""
    return lambda get: [
        get(f'{FAR_HEADS}#{model}:{metric}@cfg3.0_mean'),
        *get(f'redraws_cfg3.{model}.{metric}@cfg3').values()]


def agree(*keys: str) -> Callable:
    """The figure ``keys`` all hold (None, a mismatch, where they differ)."""
    def common(get):
        found = {get(k) for k in keys}
        return found.pop() if len(found) == 1 else None
    return common


FIGURES += [
    # -------------------------------- docs/generation.md: the run itself
    Table('docs/generation.md', '| stage | config | what | wall time |',
          GEN_RUN, {'wall time': ['wall_time_min.{stage}']},
          rows={'FQ-2 tokenizer': dict(stage='fq2_tokenizer'),
                'VQ tokenizer': dict(stage='vq_tokenizer'),
                'FAR': dict(stage='far'), 'AR': dict(stage='ar'),
                'head ablation': dict(stage='head_ablation_each')}),
    Quote('docs/generation.md', 'factorized AR head of 1 block; 1.48M '
          'parameters', FAR_HEADS,
          [None, lambda get: get('ar_head:params') / 1e6]),
    Quote('docs/generation.md', 'one linear head; 1.44M parameters',
          FAR_HEADS, [lambda get: get('ar_tiny_fmnist:params') / 1e6]),
    Quote('docs/generation.md', 'two residual MLP classifiers; 1.48M each',
          FAR_HEADS,
          [lambda get: agree(*(f'{n}:params' for n in (
              'linear_head', 'mlp_head')))(lambda k: round(get(k) / 1e6, 2))]),
    Quote('docs/generation.md', 'drawing the cfg-3 samples again with two '
          'other base seeds gave FAR 0.896 / 0.885 class accuracy and 3.57 / '
          '4.24 classifier FID, AR 0.930 / 0.931 and 3.31 / 3.95. So at 1000 '
          'samples the classifier FID moves by about ±0.4 between draws of the '
          'same model, class accuracy by about ±0.01', GEN_RUN,
          [None] + [f'redraws_cfg3.{model}.{metric}@cfg3.{s}'
                    for model in ('ar_head', 'ar_tiny_fmnist')
                    for metric in ('fmnist_class_accuracy',
                                   'fid_fmnist_classifier')
                    for s in (1, 2)]
          + [None] + [lambda get, m=metric: max(
              statistics.stdev(draws(model, m)(get))
              for model in ('ar_head', 'ar_tiny_fmnist'))
              for metric in ('fid_fmnist_classifier',
                             'fmnist_class_accuracy')]),
    Quote('docs/generation.md', 'Trousers are trousers (class accuracy 1.00 '
          'at cfg 3 for both models)', GEN_RUN,
          [agree('class_accuracy_cfg3.ar_head.trouser',
                 'class_accuracy_cfg3.ar_tiny_fmnist.trouser'), None]),
    Quote('docs/generation.md', 'Shirts are the weak class for both (0.45 FAR, '
          '0.72 AR at cfg 3; the classifier itself recognises only 0.70 of the '
          'real test shirts, against 0.88-0.99 for the other classes)',
          GEN_RUN,
          ['class_accuracy_cfg3.ar_head.shirt',
           'class_accuracy_cfg3.ar_tiny_fmnist.shirt', None,
           'classifier_on_real_test_images.shirt',
           'classifier_on_real_test_images.other_classes.from',
           'classifier_on_real_test_images.other_classes.to']),
    Quote('docs/generation.md', 'rises from 0.69-0.70 to 0.89-0.94', FAR_HEADS,
          [lambda get, c=cfg, pick=pick: pick(
              get(f'*:fmnist_class_accuracy@cfg{c}_mean'))
           for cfg in ('1.0', '3.0') for pick in (min, max)]),
    Quote('docs/generation.md', '(nll_1 1.78 against 2.12 / 2.15 nats)',
          FAR_HEADS, [f'{n}:nll_1_mean' for n in FAR_HEAD_NAMES]),
    Quote('docs/generation.md', '(2.49 against 2.56 / 2.57)', FAR_HEADS,
          [f'{n}:nll_0_mean' for n in FAR_HEAD_NAMES]),
    Quote('docs/generation.md', '(FID 4.0-4.8, accuracy 0.89-0.91)',
          FAR_HEADS,
          [extreme(pick, FAR_HEAD_NAMES, lambda get, n, m=metric: get(
              f'{n}:{m}@cfg3.0_mean'))
           for metric in ('fid_fmnist_classifier', 'fmnist_class_accuracy')
           for pick in (min, max)]),
    Quote('docs/generation.md', 'at cfg 1 the AR head has the best classifier '
          'FID (5.03 against 5.73 / 6.05)', FAR_HEADS,
          [None] + [f'{n}:fid_fmnist_classifier@cfg1.0_mean'
                    for n in FAR_HEAD_NAMES]),
    Quote('docs/generation.md', 'classifier FID (5.03 against 5.73) at equal '
          'class accuracy', FAR_HEADS,
          [f'{n}:fid_fmnist_classifier@cfg1.0_mean'
           for n in ('ar_head', 'ar_tiny_fmnist')]),
    Quote('docs/generation.md', '(0.93-0.94 against 0.89-0.91, beyond the '
          'noise) and slightly on FID (3.3-4.0 against 3.6-4.2, within it)',
          GEN_RUN,
          [lambda get, model=model, m=metric, pick=pick: pick(
              draws(model, m)(get))
           for metric in ('fmnist_class_accuracy', 'fid_fmnist_classifier')
           for model in ('ar_tiny_fmnist', 'ar_head')
           for pick in (min, max)]),
    Quote('docs/generation.md', 'FAR (1.48M parameters, one epoch) models 16 '
          'bits per position, AR (1.44M) 9 bits', FAR_HEADS,
          [lambda get: get('ar_head:params') / 1e6, 'ar_head:bits_per_token',
           lambda get: get('ar_tiny_fmnist:params') / 1e6,
           'ar_tiny_fmnist:bits_per_token']),
    Quote('docs/generation.md', '(25.65 vs 25.69 dB)', TOKENIZERS,
          ['fq2.psnr', 'vq.psnr']),
    Quote('docs/generation.md', 'code extraction took about 11 minutes per '
          'tokenizer for the 60000 training images', GEN_RUN,
          ['code_extraction_min_per_tokenizer', None]),
    # ----------------------------------- docs/metrics.md, docs/cpu_recipe.md
    Quote('docs/metrics.md', '`OfflineFID` (about 11 KB, 0.55 GB for 50k '
          'images)', EVAL_MEM,
          [lambda get: get('rows.OfflineFID / 64.state B/image') / 1000,
           lambda get: 50000 * get('rows.OfflineFID / 64.state B/image') / 1e9,
           None]),
    Quote('docs/cpu_recipe.md', '(the GroupNorm trunk lost 2.6 dB when '
          'encoding whole)', LEVERS,
          [diff('runs.r1_group.tiled/psnr', 'runs.r1_group.whole/psnr')]),
]

SIMVQ_IBQ_FM = f'{RESULTS}/ablation_simvq_ibq_fmnist'
FIGURES += [
    # ------- docs/ablations.md: SimVQ, IBQ and the rotation trick, F-MNIST
    Table('docs/ablations.md', '### Fashion-MNIST, 3 seeds',
          f'{SIMVQ_IBQ_FM}/ablation_summary.csv',
          {**FMNIST_RECON, 'usage_0': mean_std('usage_0'),
           'perplexity_0': mean_std('perplexity_0'),
           'usage_1': mean_std('usage_1'), 'seeds': ['{name}:runs']}),
    Table('docs/ablations.md', 'Paired by seed against the rows above',
          f'{SIMVQ_IBQ_FM}/ablation.csv', PAIRED,
          rows={'SimVQ - VQ': dict(a='simvq', b=f'{FMNIST}/ablation.csv#vq'),
                'FQ-2 of SimVQ - SimVQ': dict(a='fq2_simvq', b='simvq'),
                'FQ-2 of SimVQ - FQ-2 (fq2_simvq - fq2_plain)':
                    dict(a='fq2_simvq',
                         b=f'{FMNIST}/ablation.csv#fq2_plain'),
                'IBQ - VQ': dict(a='ibq', b=f'{FMNIST}/ablation.csv#vq'),
                'FQ-2 of IBQ - IBQ': dict(a='fq2_ibq', b='ibq')}),
    Quote('docs/ablations.md', 'Its codebook is in use (usage 0.99, '
          'perplexity 430 of 1024) and its PSNR is VQ\'s within what a rerun '
          'of older code moves (+0.25 dB', f'{SIMVQ_IBQ_FM}/ablation.csv',
          [f'{SIMVQ_IBQ_FM}/ablation_summary.csv#simvq:usage_0_mean',
           f'{SIMVQ_IBQ_FM}/ablation_summary.csv#simvq:perplexity_0_mean',
           None,
           mean_diff('simvq@{seed}:psnr', f'{FMNIST}/ablation.csv#vq@{{seed}}'
                     ':psnr')]),
    Quote('docs/ablations.md', 'is above SimVQ-1024 in every seed (+0.50 dB '
          'on average, with a lower classifier FID, 1.88 against 2.17), the '
          'same gain plain FQ-2 has over VQ in the section above (+0.78 dB), '
          'and level with plain FQ-2 (-0.04 dB',
          f'{SIMVQ_IBQ_FM}/ablation.csv',
          [None, mean_diff('fq2_simvq@{seed}:psnr', 'simvq@{seed}:psnr'),
           f'{SIMVQ_IBQ_FM}/ablation_summary.csv#fq2_simvq:'
           'fid_fmnist_recon_mean',
           f'{SIMVQ_IBQ_FM}/ablation_summary.csv#simvq:fid_fmnist_recon_mean',
           None,
           lambda get: (get(f'{FMNIST}/ablation_summary.csv#fq2_plain:'
                            'psnr_mean')
                        - get(f'{FMNIST}/ablation_summary.csv#vq:psnr_mean')),
           None,
           mean_diff('fq2_simvq@{seed}:psnr',
                     f'{FMNIST}/ablation.csv#fq2_plain@{{seed}}:psnr')]),
    Quote('docs/ablations.md', 'token (usage 0.008, perplexity 5), and it is '
          "8.25 dB below VQ, with a classifier FID of 34.78 against VQ's 2.20",
          f'{SIMVQ_IBQ_FM}/ablation_summary.csv',
          ['ibq:usage_0_mean', 'ibq:perplexity_0_mean',
           lambda get: -mean_diff(
               f'{SIMVQ_IBQ_FM}/ablation.csv#ibq@{{seed}}:psnr',
               f'{FMNIST}/ablation.csv#vq@{{seed}}:psnr')(get),
           'ibq:fid_fmnist_recon_mean',
           f'{FMNIST}/ablation_summary.csv#vq:fid_fmnist_recon_mean']),
    Quote('docs/ablations.md', 'FQ-2 of IBQ collapses in both sub-codebooks '
          '(usage 0.008 and 0.031, perplexity 2 and 7) and is level with IBQ '
          '(+0.14 dB, seeds disagree: +1.71, -1.53, +0.25), 8.89 dB below '
          'plain FQ-2', f'{SIMVQ_IBQ_FM}/ablation.csv',
          [None, f'{SIMVQ_IBQ_FM}/ablation_summary.csv#fq2_ibq:usage_0_mean',
           f'{SIMVQ_IBQ_FM}/ablation_summary.csv#fq2_ibq:usage_1_mean',
           f'{SIMVQ_IBQ_FM}/ablation_summary.csv#fq2_ibq:perplexity_0_mean',
           f'{SIMVQ_IBQ_FM}/ablation_summary.csv#fq2_ibq:perplexity_1_mean',
           *seed_diffs('psnr', 'fq2_ibq', 'ibq')[-1:],
           *seed_diffs('psnr', 'fq2_ibq', 'ibq')[:3],
           lambda get: -mean_diff(
               'fq2_ibq@{seed}:psnr',
               f'{FMNIST}/ablation.csv#fq2_plain@{{seed}}:psnr')(get),
           None]),
]
