"""README.md and docs/*.md stay true to the code they describe.

Each test reads a claim out of the docs and checks it against the thing
itself: the files named exist, the quoted error is the registry's, the
ImageNet override reaches every loader, the extras and configs listed are
the ones setup.cfg and configs/ hold.
"""
import argparse
import configparser
import csv
import json
import re
import shlex
import statistics
from pathlib import Path

import doc_figures
import pytest
from mmengine.config import DictAction
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

from fqzoo.errors import InputKeyError, input_error_message
from fqzoo.registry import QUANTIZERS
from fqzoo.utils.config import load_config

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))]
PATH_RE = re.compile(
    r'(?<![\w/.-])((?:configs|tools|docs|fqzoo|tests|examples)/[\w./{},*-]*[\w}*])')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def expand_braces(path: str) -> list:
    """``a/{b,c}_{1,2}.py`` -> the four paths it stands for."""
    match = re.search(r'\{([^}]*)\}', path)
    if match is None:
        return [path]
    return [expanded for alt in match.group(1).split(',')
            for expanded in expand_braces(
                path[:match.start()] + alt + path[match.end():])]


def named_paths(text: str) -> list:
    """Repository paths (configs/, tools/, docs/ ...) a markdown text names."""
    return [path.rstrip('.') for found in PATH_RE.findall(text)
            for path in expand_braces(found)]


def test_named_paths_reads_braces_and_globs():
    text = ('see `configs/fq/fqgan_{dual,triple}_ds{16,8}.py`, '
            '`configs/ablation/*.py` and tools/train.py.')
    assert named_paths(text) == [
        'configs/fq/fqgan_dual_ds16.py', 'configs/fq/fqgan_dual_ds8.py',
        'configs/fq/fqgan_triple_ds16.py', 'configs/fq/fqgan_triple_ds8.py',
        'configs/ablation/*.py', 'tools/train.py']


@pytest.mark.parametrize('doc', DOCS, ids=lambda p: p.name)
def test_paths_named_in_docs_exist(doc):
    missing = []
    for path in named_paths(doc.read_text()):
        found = (list(ROOT.glob(path)) if '*' in path else
                 (ROOT / path).exists() or (doc.parent / path).exists())
        if not found:
            missing.append(path)
    assert missing == []


def cfg_options_block(text: str) -> list:
    """The ``--cfg-options`` arguments of the README's ImageNet override."""
    for block in re.findall(r'```bash\n(.*?)```', text, flags=re.S):
        if '--cfg-options' in block and 'data_root' in block:
            args = shlex.split(block.replace('\\\n', ' '))
            return args[args.index('--cfg-options') + 1:]
    raise AssertionError('README has no --cfg-options data_root example')


@pytest.mark.parametrize('config', ['configs/vq/vqgan_ds16_imagenet.py',
                                    'configs/fq/fqgan_dual_ds16.py'])
def test_readme_imagenet_override_reaches_every_loader(config):
    options = cfg_options_block((ROOT / 'README.md').read_text())
    roots = {opt.split('=', 1)[1] for opt in options}
    assert len(roots) == 1
    root, = roots
    default = load_config(ROOT / config)
    assert {default[k].dataset.data_root for k in LOADERS} == {'data/imagenet'}
    # Parsed as tools/train.py parses it.
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(['--cfg-options', *options])
    cfg = load_config(ROOT / config, args.cfg_options)
    assert [cfg[k].dataset.data_root for k in LOADERS] == [root] * 3


def test_configs_md_quotes_the_registry_error():
    text = (ROOT / 'docs/configs.md').read_text()
    quoted = re.search(r'^error: Unknown quantizer type "(\w+)".*$', text,
                       flags=re.M)
    assert quoted is not None
    with pytest.raises(InputKeyError) as error:
        QUANTIZERS.build(dict(type=quoted.group(1)))
    # The line a tool prints for it. Other tests register quantizers from
    # outside fqzoo in this process (test-only ones, the plugin example); a
    # user's process has only fqzoo's.
    message = input_error_message(error.value)
    for name, cls in QUANTIZERS.module_dict.items():
        if not cls.__module__.startswith('fqzoo.'):
            message = message.replace(f', {name}', '')
    assert quoted.group(0) == f'error: {message}'


@pytest.mark.parametrize('doc', ['README.md', 'docs/troubleshooting.md'])
def test_inception_file_is_torch_fidelitys(doc):
    text = (ROOT / doc).read_text()
    names = set(re.findall(r'[\w-]*inception[\w-]*\.pth', text))
    assert names == {URL_INCEPTION_V3.rsplit('/', 1)[1]}


def test_quickstart_time_agrees():
    pattern = r'about (\d+) minutes on 2 CPU cores'
    readme = re.findall(pattern, (ROOT / 'README.md').read_text())
    started = re.findall(pattern,
                         (ROOT / 'docs/getting_started.md').read_text())
    assert len(readme) == len(started) == 1
    assert readme == started


def test_every_extra_is_documented():
    setup = configparser.ConfigParser()
    setup.read(ROOT / 'setup.cfg')
    extras = setup['options.extras_require']
    rows = {}
    for line in (ROOT / 'docs/getting_started.md').read_text().splitlines():
        row = re.match(r'\| `([\w-]+)` \| (.*?) \|', line)
        if row:
            rows[row.group(1)] = row.group(2)
    assert set(extras) <= set(rows)
    for extra, requirements in extras.items():
        packages = [re.split(r'[<>=!~\[; ]', req)[0]
                    for req in requirements.split('\n') if req]
        assert sorted(re.findall(r'`([\w.-]+)`', rows[extra])) == \
            sorted(packages), extra


def test_every_vq_config_is_documented():
    text = (ROOT / 'docs/configs.md').read_text()
    listed = set(re.findall(r'`(\w+\.py)`', text))
    configs = {p.name for p in (ROOT / 'configs/vq').glob('*.py')}
    assert configs and configs <= listed


# ------------------------------------------------ figures and their sources
NUMBER_RE = re.compile(r'(?<![\w.])[-+]?\d+(?:\.\d+)?')


def numbers(text: str) -> list:
    """The numbers of a text as quoted (``'+0.84'``, ``'25.51'``, ``'3'``);
    not those inside a word (``usage_0``, ``cfg3.0``, ``FQ-2``'s 2 is one)."""
    return NUMBER_RE.findall(text)


def as_quoted(value: float, quoted: str) -> str:
    """``value`` written with the decimals (and the explicit sign) of
    ``quoted``."""
    decimals = len(quoted.split('.')[1]) if '.' in quoted else 0
    sign = '+' if quoted.startswith('+') else ''
    return f'{float(value):{sign}.{decimals}f}'


def test_numbers_and_rounding_as_quoted():
    assert numbers('| 21.57 ± 0.31 | usage_0 cfg3.0 FQ-2 | +0.84 / -0.00 '
                   '| 2.1/255 | 1.48M |') == ['21.57', '0.31', '2', '+0.84',
                                             '-0.00', '2.1', '255', '1.48']
    assert as_quoted(20.4929, '20.49') == '20.49'
    assert as_quoted(0.8356, '+0.84') == '+0.84'
    assert as_quoted(-0.004, '-0.00') == '-0.00'
    assert as_quoted(672 / 60, '11') == '11'
    assert as_quoted(0.9, '0.90') == '0.90'


class Sources:
    """Values of results files by key (``tests/doc_figures.py`` says how
    keys read)."""

    def __init__(self) -> None:
        self.files = {}

    def load(self, path: str):
        if path not in self.files:
            file = ROOT / path
            if path.endswith('.csv'):
                with open(file, newline='') as handle:
                    self.files[path] = list(csv.DictReader(handle))
            else:
                self.files[path] = json.loads(file.read_text())
        return self.files[path]

    def get(self, source: str, key: str):
        if '#' in key:
            source, key = key.split('#', 1)
        data = self.load(source)
        if source.endswith('.csv'):
            return self._csv(data, source, key)
        for part in key.split('.'):
            if not isinstance(data, dict) or part not in data:
                raise KeyError(f'{source}: no "{key}" ("{part}" missing)')
            data = data[part]
        return data

    @staticmethod
    def _csv(rows: list, source: str, key: str):
        selector, column = key.rsplit(':', 1)
        if selector == '*':
            return [float(r[column]) for r in rows if r[column] != '']
        name, _, seed = selector.partition('@')
        found = [r for r in rows if r['name'] == name
                 and (not seed or r.get('seed') == seed)]
        if len(found) != 1 or column not in found[0]:
            raise KeyError(f'{source}: {len(found)} rows "{selector}" with a '
                           f'column "{column}"')
        value = found[0][column]
        return None if value == '' else float(value)


def resolve(sources: Sources, source: str, value, row: dict):
    """The number a value spec of ``tests/doc_figures.py`` stands for."""
    def get(key):
        return sources.get(source, key)
    if callable(value):
        return value(get, **row)
    return get(value.format(**row))


def check_numbers(where: str, quoted: list, values: list, sources: Sources,
                  source: str, row: dict) -> list:
    """Mismatches between quoted numbers and what their sources hold."""
    if len(quoted) != len(values):
        return [f'{where}: {len(quoted)} numbers {quoted}, {len(values)} '
                f'sources']
    errors = []
    for text, value in zip(quoted, values):
        if value is None:
            continue
        actual = resolve(sources, source, value, row)
        if actual is None or as_quoted(actual, text) != text:
            what = value if isinstance(value, str) else 'derived'
            errors.append(f'{where}: quotes {text}, the source holds '
                          f'{actual!r} ({what})')
    return errors


def table_after(text: str, anchor: str) -> tuple:
    """Header cells and data rows (cells) of the first markdown table after
    the line holding ``anchor``."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if anchor in line]
    assert len(starts) == 1, f'{len(starts)} lines hold {anchor!r}'
    i = starts[0] + (0 if lines[starts[0]].startswith('|') else 1)
    while not lines[i].startswith('|'):
        i += 1

    def cells(line):
        return [c.strip() for c in line.strip().strip('|').split('|')]
    header, body = cells(lines[i]), []
    for line in lines[i + 2:]:
        if not line.startswith('|'):
            break
        body.append(cells(line))
    return header, body


def check_table(spec, text: str, sources: Sources) -> list:
    header, body = table_after(text, spec.after)
    where = f'{spec.doc} table after {spec.after!r}'
    missing = [c for c in spec.columns if c not in header]
    if missing:
        return [f'{where}: no column {missing}']
    named_by = [header.index(h) for h in spec.key] or [0]
    labels = [' / '.join(cells[i].replace('`', '') for i in named_by)
              for cells in body]
    if spec.rows is not None and sorted(labels) != sorted(spec.rows):
        return [f'{where}: rows {labels}, expected {list(spec.rows)}']
    errors = []
    for label, cells in zip(labels, body):
        row = dict(spec.rows[label]) if spec.rows is not None \
            else dict(name=label)
        columns = {**spec.columns, **row.pop('columns', {})}
        for column, values in columns.items():
            cell = cells[header.index(column)]
            if not numbers(cell):  # '-', '' or words: no value in the source
                empty = [resolve(sources, spec.source, v, row) for v in values]
                if any(v is not None for v in empty):
                    errors.append(f'{where}, {label} / {column}: "{cell}" '
                                  f'but the source holds {empty}')
                continue
            errors += check_numbers(f'{where}, {label} / {column}',
                                    numbers(cell), list(values), sources,
                                    spec.source, row)
    return errors


def test_table_rows_named_by_key_columns_and_cells_without_numbers():
    """Rows whose first cell repeats are told apart by the ``key`` columns;
    a cell without a number ("-", "skipped (memory)") must have no value in
    the source, and a wrong figure names its row by those cells."""
    text = ('after\n| impl | K | ms | naive ms |\n|---|---|---|---|\n'
            '| a | 1 | 2.5 | skipped (memory) |\n| a | 2 | 4.0 | - |\n')
    held = {'a / 1': {'ms': 2.5, 'naive ms': None},
            'a / 2': {'ms': 4.0, 'naive ms': 7.0}}

    class Held(Sources):
        def get(self, source, key):
            _, name, column = key.split('.')
            return held[name][column]
    spec = doc_figures.Table(
        'x.md', 'after', 'held.json',
        {'ms': ['rows.{name}.ms'], 'naive ms': ['rows.{name}.naive ms']},
        key=('impl', 'K'))
    assert check_table(spec, text, Held()) == [
        "x.md table after 'after', a / 2 / naive ms: \"-\" but the source "
        'holds [7.0]']
    held['a / 2']['naive ms'], held['a / 1']['ms'] = None, 2.4
    assert check_table(spec, text, Held()) == [
        "x.md table after 'after', a / 1 / ms: quotes 2.5, the source holds "
        '2.4 (rows.{name}.ms)']


def quoted_in(doc: str, text: str) -> bool:
    def flat(s):
        return ' '.join(s.split())
    return flat(text) in flat((ROOT / doc).read_text())


@pytest.mark.parametrize('spec', doc_figures.FIGURES,
                         ids=lambda s: f'{s.doc}:'
                         f'{getattr(s, "text", getattr(s, "after", ""))[:40]}')
def test_quoted_figures_match_their_sources(spec):
    """Every figure registered in tests/doc_figures.py is what its results
    file holds, at the precision the doc quotes it."""
    sources = Sources()
    if isinstance(spec, doc_figures.Table):
        errors = check_table(spec, (ROOT / spec.doc).read_text(), sources)
    else:
        assert quoted_in(spec.doc, spec.text), \
            f'{spec.doc} does not quote {spec.text!r}'
        errors = check_numbers(f'{spec.doc}: {spec.text[:50]}',
                               numbers(spec.text), list(spec.values),
                               sources, spec.source, {})
    assert errors == []


def test_figure_sources_are_results_files():
    """Figures come from docs/results/ (or the records shipped with the
    Fashion-MNIST classifier's weights and with the zoo's shipped models),
    and each recorded results file says where its figures came from."""
    allowed = ('docs/results/', doc_figures.CLASSIFIER,
               doc_figures.ZOO_METRICS)
    for spec in doc_figures.FIGURES:
        assert spec.source.startswith(allowed), spec.source
    for path in (ROOT / 'docs' / 'results').rglob('*.json'):
        record = json.loads(path.read_text())
        assert {'what', 'commit', 'command'} <= set(record), path


def test_three_seed_summary_is_the_mean_of_the_seeds():
    """The recorded means and standard deviations of the quickstart's three
    seeds agree with its per-seed figures (to their rounding)."""
    record = json.loads((ROOT / doc_figures.THREE_SEEDS).read_text())
    seeds = list(record['seeds'].values())
    for key, mean in record['mean'].items():
        values = [seed[key] for seed in seeds]
        assert abs(statistics.mean(values) - mean) <= 0.011, key
        if key in record['std']:
            assert abs(statistics.stdev(values) - record['std'][key]) \
                <= 0.021, key
