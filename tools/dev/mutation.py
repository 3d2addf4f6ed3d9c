"""Run mutmut (mutation testing) on fqzoo, optionally narrowed.

With no arguments it runs what ``[mutmut]`` in ``setup.cfg`` says: every
function of ``fqzoo/models`` and ``fqzoo/evaluation``, each mutant checked by
the tests of ``tests/test_models`` and ``tests/test_evaluation`` that call it.
That takes hours on two cores; ``--mutate`` limits the mutants to some files
and ``--tests`` the tests that are run (both replace the ``setup.cfg``
values for this run only), e.g.::

    python tools/dev/mutation.py --mutate fqzoo/models/quantizers/fsq.py \\
        --tests tests/test_models/test_quantizers

mutmut 3 works in ``mutants/`` (a copy of ``fqzoo``, ``tests`` and
``configs``) and keeps its results there, so a second run only retests what
changed (naming mutants on mutmut's own command line reruns them even when
their result is kept); a run with another selection starts afresh. Afterwards
``mutmut results`` lists the surviving mutants, ``mutmut show NAME`` prints
one as a diff and ``mutmut browse`` opens a terminal browser. Mutants of a
file with no test calling them are reported as "no tests".
"""
import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[2]
SELECTION = REPO / 'mutants' / 'fqzoo-selection.json'


def start_fresh_if_selection_changed(selection: dict) -> None:
    """Delete ``mutants/`` when the last run mutated other files or ran
    other tests.

    mutmut overwrites the mutated copy of a file outside the selection with
    the plain source, and later takes that newer copy for an up-to-date
    mutated file: its mutants would all seem to survive. Starting afresh
    costs the cached results, never correctness.

    Args:
        selection (dict): ``only_mutate`` and ``tests`` of this run.
    """
    if SELECTION.is_file() and json.loads(SELECTION.read_text()) != selection:
        shutil.rmtree(SELECTION.parent)
    SELECTION.parent.mkdir(exist_ok=True)
    SELECTION.write_text(json.dumps(selection))


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--mutate', nargs='+', default=[], metavar='FILE',
                        help='source files to mutate (default: setup.cfg)')
    parser.add_argument('--tests', nargs='+', default=[], metavar='PATH',
                        help='pytest paths or node ids (default: setup.cfg)')
    parser.add_argument('--jobs', type=int, default=2,
                        help='mutants tested at once. Defaults to 2.')
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    mutate = [str(Path(p).resolve().relative_to(REPO)) for p in args.mutate]
    os.chdir(REPO)
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    # mutmut reads setup.cfg when first imported; the run below uses this
    # cached configuration object, so narrowing it here lasts one run.
    from mutmut.__main__ import cli
    from mutmut.configuration import config
    cfg = config()
    if mutate:
        cfg.only_mutate = mutate
    if args.tests:
        cfg.pytest_add_cli_args_test_selection = list(args.tests)
    start_fresh_if_selection_changed(dict(
        only_mutate=cfg.only_mutate,
        tests=cfg.pytest_add_cli_args_test_selection))
    cli(['run', '--max-children', str(args.jobs)], standalone_mode=False)
    cli(['results'], standalone_mode=False)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
