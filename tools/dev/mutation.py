"""Run mutmut (mutation testing) on fqzoo, optionally narrowed.

With no arguments it runs what ``[mutmut]`` in ``setup.cfg`` says: every
function of ``fqzoo/models`` and ``fqzoo/evaluation``, each mutant checked by
the tests of ``tests/test_models`` and ``tests/test_evaluation`` that call it.
That takes hours on two cores; ``--mutate`` limits the mutants to some files
and ``--tests`` the tests that are run (both replace the ``setup.cfg``
values for this run only), e.g.::

    python tools/dev/mutation.py --mutate fqzoo/models/quantizers/fsq.py \\
        --tests tests/test_models/test_quantizers

``--group NAME`` runs one of :data:`GROUPS`: a package of fqzoo against its
own tests (:data:`PYTEST_OPTIONS` leaves out the ablation group's ``slow``
tests, which start the ablation tool's training processes). The groups
together cover every module of ``fqzoo/`` (a test checks it), so running
each once is the whole-codebase run, a few hours per group on two cores.
``--survivors FILE`` writes each mutant that was not killed (survived, no
tests, timeout ...) with its diff, for reading after the next run has
replaced ``mutants/``.

mutmut 3 works in ``mutants/`` (a copy of ``fqzoo``, ``tests`` and
``configs``) and keeps its results there, so a second run only retests what
changed (naming mutants on mutmut's own command line reruns them even when
their result is kept); a run with another selection starts afresh. Afterwards
``mutmut results`` lists the surviving mutants, ``mutmut show NAME`` prints
one as a diff and ``mutmut browse`` opens a terminal browser. Mutants of a
file with no test calling them are reported as "no tests". mutmut keeps
its map of which test calls which function while the test names stay the
same: after installing something that lets skipped tests run, delete
``mutants/mutmut-stats.json`` (and reset the "no tests" results) so the map
is made again.
"""
import argparse
import contextlib
import fnmatch
import importlib.util
import io
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[2]
SELECTION = REPO / 'mutants' / 'fqzoo-selection.json'

_MODELS = 'fqzoo/models/'
_TOOLS = 'tests/test_tools/'
#: name -> (files to mutate, fnmatch patterns; the tests that check them).
GROUPS: Dict[str, Tuple[List[str], List[str]]] = {
    'quantizers': ([_MODELS + 'quantizers/*'],
                   ['tests/test_models/test_quantizers']),
    'generators': ([_MODELS + 'generators/*'],
                   ['tests/test_models/test_generators']),
    'models': ([_MODELS + part + '/*' for part in (
        'regularizers', 'losses', 'teachers', 'backbones', 'encoders',
        'decoders', 'discriminators', 'tokenizers')] + [_MODELS + '__init__.py'],
        ['tests/test_models/' + part for part in (
            'test_regularizers', 'test_losses', 'test_teachers',
            'test_backbones', 'test_encoders', 'test_heads',
            'test_tokenizers')]),
    'evaluation': (['fqzoo/evaluation/*'],
                   ['tests/test_evaluation',
                    'tests/test_generation/test_fmnist_classifier.py']),
    'datasets': (['fqzoo/datasets/*'], ['tests/test_datasets']),
    'engine': (['fqzoo/engine/*'], ['tests/test_engine']),
    'converters': (['fqzoo/converters/*'],
                   ['tests/test_converters',
                    _TOOLS + 'test_convert_generators.py',
                    _TOOLS + 'test_convert_official.py',
                    _TOOLS + 'test_converter_key_tables.py']),
    'generation': (['fqzoo/generation/*'], ['tests/test_generation']),
    'apis': (['fqzoo/apis/*'],
             ['tests/test_apis', _TOOLS + 'test_extract_codes.py',
              _TOOLS + 'test_reconstruct.py',
              _TOOLS + 'test_analyze_codebook.py']),
    'ablation': (['fqzoo/ablation/*'],
                 [_TOOLS + 'test_ablate.py',
                  _TOOLS + 'test_ablate_generators.py',
                  _TOOLS + 'test_ablate_launchers.py']
                 + [_TOOLS + f'test_ablation_{part}_mutation_kills.py'
                    for part in ('runs', 'report', 'records')]),
    'demo': (['fqzoo/demo/*', 'fqzoo/zoo_assets/*'],
             ['tests/test_demo.py', 'tests/test_demo_models.py',
              'tests/test_demo_app_mutation_kills.py',
              'tests/test_demo_core_mutation_kills.py']),
    'foundations': (['fqzoo/__init__.py', 'fqzoo/errors.py',
                     'fqzoo/registry.py', 'fqzoo/utils/*',
                     'fqzoo/visualization/*'],
                    ['tests/test_utils', 'tests/test_registry.py',
                     'tests/test_errors.py', 'tests/test_errors_remaining.py',
                     'tests/test_visualization', _TOOLS + 'test_preflight.py']),
}


#: group -> pytest options added to its selection. The ablation group's
#: ``slow`` tests run the ablation tool's training processes, tens of
#: seconds each, which mutmut would repeat for every mutant of a function
#: they call in-process, and whose own calls it cannot see; its stand-in
#: tests (``test_ablation_*_mutation_kills.py``) check the same code
#: in-process. ``make test`` still runs the slow ones.
PYTEST_OPTIONS: Dict[str, List[str]] = {'ablation': ['-m', 'not slow']}


#: group -> (a module its tests need, how to install it). Without it those
#: tests skip and every mutant they would check reads "no tests".
EXTRAS: Dict[str, Tuple[str, str]] = {
    'demo': ('gradio', 'make .venv/.demo-installed (the demo extra)'),
}


def missing_extra(group: str) -> Optional[str]:
    """Why ``group`` cannot be run in this environment, or None."""
    if group not in EXTRAS or importlib.util.find_spec(EXTRAS[group][0]):
        return None
    module, install = EXTRAS[group]
    return (f'the {group} group\'s tests need {module}, which is not '
            f'installed: run {install} first (without it they skip and '
            'every mutant reads "no tests")')


def group_of(path: str) -> List[str]:
    """The names of the groups that mutate ``path`` (relative to REPO)."""
    return [name for name, (patterns, _) in GROUPS.items()
            if any(fnmatch.fnmatch(path, pattern) for pattern in patterns)]


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
    parser.add_argument('--group', choices=sorted(GROUPS),
                        help='a package and its own tests (GROUPS); '
                        '--mutate/--tests add to it')
    parser.add_argument('--survivors', type=Path, metavar='FILE',
                        help='write the mutants not killed, with diffs')
    parser.add_argument('--jobs', type=int, default=2,
                        help='mutants tested at once. Defaults to 2.')
    return parser.parse_args(argv)


def mutmut_output(cli, *args: str) -> str:
    """What ``mutmut ARGS`` prints, run in this process: a ``mutmut``
    process would read ``setup.cfg`` again, not this run's selection, and
    find no results for files outside it."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli(list(args), standalone_mode=False)
    return out.getvalue()


def write_survivors(path: Path, cli) -> int:
    """Write ``mutmut results`` minus the killed mutants, each followed by
    ``mutmut show``'s diff, to ``path``; return how many there were."""
    rows = [line.strip().rsplit(': ', 1) for line in
            mutmut_output(cli, 'results', '--all', 'true').splitlines()
            if ': ' in line]
    lines = []
    for name, status in rows:
        if status != 'killed':
            lines += [f'=== {name} ({status})', mutmut_output(cli, 'show',
                                                               name)]
    path.write_text('\n'.join(lines))
    return len(lines) // 2


def selection(args: argparse.Namespace) -> Tuple[List[str], List[str]]:
    """The files to mutate and the pytest arguments that select the tests:
    the group's (with its :data:`PYTEST_OPTIONS`), then ``--mutate`` and
    ``--tests``."""
    mutate = [str(Path(p).resolve().relative_to(REPO)) for p in args.mutate]
    tests = list(args.tests)
    if args.group:
        files, paths = GROUPS[args.group]
        mutate = files + mutate
        tests = paths + PYTEST_OPTIONS.get(args.group, []) + tests
    return mutate, tests


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    problem = args.group and missing_extra(args.group)
    if problem:
        print(f'mutation.py: {problem}', file=sys.stderr)
        return 2
    mutate, tests = selection(args)
    os.chdir(REPO)
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    # mutmut reads setup.cfg when first imported; the run below uses this
    # cached configuration object, so narrowing it here lasts one run.
    from mutmut.__main__ import cli
    from mutmut.configuration import config
    cfg = config()
    if mutate:
        cfg.only_mutate = mutate
    if tests:
        cfg.pytest_add_cli_args_test_selection = tests
    start_fresh_if_selection_changed(dict(
        only_mutate=cfg.only_mutate,
        tests=cfg.pytest_add_cli_args_test_selection))
    cli(['run', '--max-children', str(args.jobs)], standalone_mode=False)
    cli(['results'], standalone_mode=False)
    if args.survivors:
        print(f'{write_survivors(args.survivors, cli)} not killed: '
              f'{args.survivors}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
