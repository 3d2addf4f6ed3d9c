"""tools/dev/mutation.py keeps mutmut's cache only for the same selection."""
import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location(
    'mutation_tool', REPO / 'tools' / 'dev' / 'mutation.py')
mutation_tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mutation_tool)


def test_cache_kept_for_the_same_selection_dropped_for_another(
        tmp_path: Path, monkeypatch):
    mutants = tmp_path / 'mutants'
    monkeypatch.setattr(mutation_tool, 'SELECTION',
                        mutants / 'fqzoo-selection.json')
    fsq = dict(only_mutate=['fqzoo/models/quantizers/fsq.py'], tests=['t'])
    other = dict(only_mutate=['fqzoo/models/losses/adversarial.py'],
                 tests=['t'])
    cached = mutants / 'fqzoo' / 'models' / 'quantizers' / 'fsq.py.meta'
    cached.parent.mkdir(parents=True)
    cached.write_text('{}')
    # A mutants/ of unknown selection (an older run) is kept.
    mutation_tool.start_fresh_if_selection_changed(fsq)
    assert cached.is_file()
    mutation_tool.start_fresh_if_selection_changed(fsq)
    assert cached.is_file()
    mutation_tool.start_fresh_if_selection_changed(other)
    assert not cached.exists()
    assert json.loads((mutants / 'fqzoo-selection.json').read_text()) == other


def test_groups_cover_every_module_once_with_existing_tests():
    """`--group` runs, one per group, are the whole-codebase mutation run:
    every module of fqzoo/ belongs to exactly one group, and every test
    path a group names exists."""
    modules = sorted(str(p.relative_to(REPO))
                     for p in (REPO / 'fqzoo').rglob('*.py'))
    assert len(modules) > 100
    placed = {module: mutation_tool.group_of(module) for module in modules}
    assert {m: g for m, g in placed.items() if len(g) != 1} == {}
    assert set(mutation_tool.GROUPS) == {g for (g,) in placed.values()}
    for _, tests in mutation_tool.GROUPS.values():
        for path in tests:
            assert (REPO / path).exists(), path


def test_survivors_file_lists_every_mutant_not_killed_with_its_diff(
        tmp_path: Path, monkeypatch):
    results = ('    fqzoo.a.x_f__mutmut_1: killed\n'
               '    fqzoo.a.x_f__mutmut_2: survived\n'
               '    fqzoo.a.x_g__mutmut_1: no tests\n')

    calls = []

    def fake_cli(args, standalone_mode):
        """mutmut's click command, called in this process (so with the
        run's narrowed configuration), printing what mutmut prints."""
        assert standalone_mode is False
        calls.append(args)
        print(results if args[0] == 'results'
              else f'--- a.py\n-old {args[1]}\n+new')

    path = tmp_path / 'survivors.txt'
    assert mutation_tool.write_survivors(path, fake_cli) == 2
    assert calls == [['results', '--all', 'true'],
                     ['show', 'fqzoo.a.x_f__mutmut_2'],
                     ['show', 'fqzoo.a.x_g__mutmut_1']]
    text = path.read_text()
    assert '=== fqzoo.a.x_f__mutmut_2 (survived)' in text
    assert '-old fqzoo.a.x_f__mutmut_2' in text
    assert '=== fqzoo.a.x_g__mutmut_1 (no tests)' in text
    assert 'mutmut_1 (killed)' not in text and 'x_f__mutmut_1' not in text


def test_a_group_whose_tests_need_a_missing_extra_is_refused(
        monkeypatch, capsys):
    """Without the extra its tests would skip and every mutant read
    "no tests": the run is refused naming the module and the install."""
    monkeypatch.setitem(mutation_tool.EXTRAS, 'demo',
                        ('no_such_module_for_fqzoo', 'make extra-x'))
    assert mutation_tool.main(['--group', 'demo']) == 2
    err = capsys.readouterr().err
    assert 'no_such_module_for_fqzoo' in err and 'make extra-x' in err
    assert mutation_tool.missing_extra('quantizers') is None
    monkeypatch.setitem(mutation_tool.EXTRAS, 'demo', ('json', 'make x'))
    assert mutation_tool.missing_extra('demo') is None


def test_a_group_selection_adds_its_pytest_options_before_the_extras():
    """The ablation group leaves out its `slow` tests (the tool's training
    processes); --mutate and --tests add to a group's selection."""
    mutate, tests = mutation_tool.selection(mutation_tool.parse_args(
        ['--group', 'ablation', '--mutate', 'fqzoo/errors.py',
         '--tests', 'tests/test_errors.py']))
    files, paths = mutation_tool.GROUPS['ablation']
    assert mutate == files + ['fqzoo/errors.py']
    assert tests == paths + ['-m', 'not slow', 'tests/test_errors.py']
    assert 'tests/test_tools/test_ablation_runs_mutation_kills.py' in paths
    mutate, tests = mutation_tool.selection(mutation_tool.parse_args(
        ['--group', 'datasets']))
    assert tests == ['tests/test_datasets'] and mutate == [
        'fqzoo/datasets/*']
    mutate, tests = mutation_tool.selection(mutation_tool.parse_args(
        ['--tests', 't.py']))
    assert (mutate, tests) == ([], ['t.py'])
