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
