"""List the ``raise`` statements of a source tree that no test reached.

Reads a coverage.py data file (``make coverage`` writes ``.coverage``) and
every ``.py`` file under the source root, finds each ``raise`` statement
with :mod:`ast`, and prints those of which no line was executed: the error
paths a user can hit that no test has ever seen. A file the run never
imported counts as wholly unreached.

Example:
    python tools/dev/raise_coverage.py --data-file .coverage --source fqzoo
"""
import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Set

from coverage import CoverageData

REPO = Path(__file__).resolve().parents[2]


@dataclass
class RaiseSite:
    """One ``raise`` statement.

    Args:
        path (Path): the file.
        line (int): first line of the statement.
        end_line (int): last line of the statement.
        function (str): qualified name of the enclosing function or class
            (``<module>`` at top level).
        text (str): the statement's first source line, stripped.
    """

    path: Path
    line: int
    end_line: int
    function: str
    text: str


class _RaiseFinder(ast.NodeVisitor):
    """Collects :class:`RaiseSite` s with their enclosing qualified name."""

    def __init__(self, path: Path, lines: List[str]) -> None:
        self.path = path
        self.lines = lines
        self.scope: List[str] = []
        self.sites: List[RaiseSite] = []

    def _scoped(self, node: ast.AST) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scoped

    def visit_Raise(self, node: ast.Raise) -> None:
        self.sites.append(RaiseSite(
            self.path, node.lineno, node.end_lineno or node.lineno,
            '.'.join(self.scope) or '<module>',
            self.lines[node.lineno - 1].strip()))
        self.generic_visit(node)


def raise_sites(path: Path) -> List[RaiseSite]:
    """Every ``raise`` statement of one Python file, in source order."""
    source = path.read_text()
    finder = _RaiseFinder(path, source.splitlines())
    finder.visit(ast.parse(source, filename=str(path)))
    return finder.sites


def executed_lines(data: CoverageData, path: Path) -> Set[int]:
    """Lines of ``path`` that ``data`` saw executed (empty if never)."""
    return set(data.lines(str(path.resolve())) or ())


def uncovered_raises(source: Path, data_file: Path) -> Iterator[RaiseSite]:
    """The ``raise`` statements under ``source`` no line of which ran.

    Args:
        source (Path): a package folder (searched recursively) or one file.
        data_file (Path): a coverage.py data file of a run that measured
            ``source`` (combined, if the run was parallel).

    Yields:
        RaiseSite: each unreached ``raise``, files in sorted order.
    """
    if not Path(data_file).is_file():
        raise FileNotFoundError(f'no coverage data file {data_file}; run '
                                '`make coverage` first')
    data = CoverageData(basename=str(data_file))
    data.read()
    files = [source] if source.is_file() else sorted(source.rglob('*.py'))
    for path in files:
        ran = executed_lines(data, path)
        for site in raise_sites(path):
            if ran.isdisjoint(range(site.line, site.end_line + 1)):
                yield site


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data-file', type=Path, default=REPO / '.coverage',
                        help='coverage data file. Defaults to .coverage.')
    parser.add_argument('--source', type=Path, default=REPO / 'fqzoo',
                        help='package folder or file. Defaults to fqzoo/.')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    source = args.source.resolve()
    total = sum(len(raise_sites(p)) for p in (
        [source] if source.is_file() else source.rglob('*.py')))
    missed = list(uncovered_raises(source, args.data_file))
    base = source.parent
    for site in missed:
        print(f'{site.path.relative_to(base)}:{site.line}: '
              f'[{site.function}] {site.text}')
    print(f'{len(missed)} of {total} raise statements under '
          f'{source.relative_to(base)}/ reached by no test')
    return 0


if __name__ == '__main__':
    sys.exit(main())
