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
  (a cell "-" must have no value in the source). Without ``rows`` every row
  is checked, its first cell (backticks removed) filling ``{name}``; with
  ``rows`` (first cell -> template variables) the table must have exactly
  those rows; a row's ``columns`` variable overrides the entry's columns
  for that row. A new row of a checked table is checked the day it is
  added.

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
          {**RECON, 'fid_fmnist_recon': mean_std('fid_fmnist_recon'),
           'fmnist_recon_agreement': mean_std('fmnist_recon_agreement'),
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
