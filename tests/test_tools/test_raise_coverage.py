"""tools/dev/raise_coverage.py: the raises it lists are exactly those whose
lines no test executed, checked against hand-written and real coverage
data of a small package."""
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from coverage import CoverageData

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location(
    'raise_coverage', REPO / 'tools' / 'dev' / 'raise_coverage.py')
raise_coverage = importlib.util.module_from_spec(spec)
spec.loader.exec_module(raise_coverage)

# Line numbers (1-based) of the raises of MOD, counted by hand.
MOD = textwrap.dedent('''\
    def check(x):
        if x < 0:
            raise ValueError(
                f'negative {x}')
        if x > 10:
            raise OverflowError('big')
        return x


    class Box:
        def open(self):
            raise RuntimeError('locked')
''')
UNUSED = 'def never():\n    raise KeyError(1)\n'


@pytest.fixture
def package(tmp_path: Path) -> Path:
    pkg = tmp_path / 'pkg'
    pkg.mkdir()
    (pkg / '__init__.py').write_text('')
    (pkg / 'mod.py').write_text(MOD)
    (pkg / 'unused.py').write_text(UNUSED)
    return pkg


def listed(pkg: Path, data_file: Path) -> list:
    return [(s.path.name, s.line, s.function)
            for s in raise_coverage.uncovered_raises(pkg, data_file)]


def test_sites_found_with_lines_and_scopes(package: Path):
    sites = raise_coverage.raise_sites(package / 'mod.py')
    assert [(s.line, s.end_line, s.function) for s in sites] == [
        (3, 4, 'check'), (6, 6, 'check'), (12, 12, 'Box.open')]
    assert sites[1].text == "raise OverflowError('big')"


def test_a_raise_counts_as_reached_by_any_of_its_lines(package: Path,
                                                       tmp_path: Path):
    # check(-1) as a tracer might record it: only the f-string's line of the
    # two-line raise; check(20) recorded nothing of its raise.
    data_file = tmp_path / 'cov.data'
    data = CoverageData(basename=str(data_file))
    data.add_lines({str(package / 'mod.py'): [1, 2, 4, 5, 7]})
    data.write()
    assert listed(package, data_file) == [
        ('mod.py', 6, 'check'), ('mod.py', 12, 'Box.open'),
        ('unused.py', 2, 'never')]


def test_missing_data_file_is_a_clear_error(package: Path, tmp_path: Path):
    with pytest.raises(FileNotFoundError, match='make coverage'):
        listed(package, tmp_path / 'nope')


@pytest.mark.slow
def test_real_coverage_run_and_command_line(package: Path, tmp_path: Path):
    script = tmp_path / 'drive.py'
    script.write_text(textwrap.dedent('''\
        import pkg.mod
        for x in (-1, 5):
            try:
                pkg.mod.check(x)
            except ValueError:
                pass
    '''))
    data_file = tmp_path / 'real.data'
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('COVERAGE_')}
    env['PYTHONPATH'] = str(tmp_path)
    subprocess.run([sys.executable, '-m', 'coverage', 'run',
                    f'--data-file={data_file}', f'--source={package}',
                    str(script)], cwd=tmp_path, env=env, check=True,
                   capture_output=True, timeout=60)
    assert listed(package, data_file) == [
        ('mod.py', 6, 'check'), ('mod.py', 12, 'Box.open'),
        ('unused.py', 2, 'never')]
    out = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'dev' / 'raise_coverage.py'),
         '--data-file', str(data_file), '--source', str(package)],
        env=env, check=True, capture_output=True, text=True, timeout=60)
    assert out.stdout.splitlines() == [
        "pkg/mod.py:6: [check] raise OverflowError('big')",
        "pkg/mod.py:12: [Box.open] raise RuntimeError('locked')",
        'pkg/unused.py:2: [never] raise KeyError(1)',
        '3 of 4 raise statements under pkg/ reached by no test']
