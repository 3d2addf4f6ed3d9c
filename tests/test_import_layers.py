"""The layers contract of ``.importlinter`` holds (as ``make lint`` checks),
and it bites: an upward import in a copy of the package breaks it."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

pytest.importorskip('importlinter', reason='import-linter is not installed '
                    '(pip install -e .[tests])')
LINT_IMPORTS = Path(sys.executable).with_name('lint-imports')


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    command = [str(LINT_IMPORTS)] if LINT_IMPORTS.is_file() else [
        sys.executable, '-c', 'from importlinter.cli import lint_imports_command'
        ' as c; c()']
    return subprocess.run(
        command + ['.importlinter', '--no-cache'], cwd=cwd,
        env=dict(PYTHONPATH=str(cwd), PATH='/usr/bin:/bin'),
        capture_output=True, text=True, timeout=300)


def test_the_layers_contract_is_kept():
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Contracts: 1 kept, 0 broken.' in result.stdout


def test_an_upward_import_breaks_it(tmp_path):
    shutil.copytree(REPO / 'fqzoo', tmp_path / 'fqzoo', ignore=shutil.
                    ignore_patterns('__pycache__', '*.pt', '*.pth'))
    shutil.copy(REPO / '.importlinter', tmp_path / '.importlinter')
    files = tmp_path / 'fqzoo' / 'utils' / 'files.py'
    files.write_text(files.read_text()
                     + '\n\ndef _late():\n    from fqzoo.generation import '
                     'sampler  # noqa: F401\n')
    result = _lint(tmp_path)
    assert result.returncode == 1
    assert 'BROKEN' in result.stdout
    assert 'fqzoo.utils.files -> fqzoo.generation.sampler' in result.stdout
