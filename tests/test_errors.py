"""fqzoo.errors: a refusal of the user's input is an InputError (a
ValueError), and a tool reports it as ``error: <message>`` with exit status
2 and no traceback; ``FQZOO_DEBUG=1`` re-raises it; other exceptions keep
their tracebacks."""
import ast
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, run_tool
from torch import nn

from fqzoo.errors import (
    DEBUG_ENV,
    InputError,
    InputFileNotFoundError,
    InputKeyError,
    InputTypeError,
    exit_on_input_error,
)
from fqzoo.generation.plan import check_classes
from fqzoo.utils.checkpoint import (
    UnsafeCheckpointError,
    load_state_dict_checked,
    safe_load,
)
from fqzoo.utils.config import load_config
from fqzoo.utils.shards import ShardRun, source_file
from fqzoo.utils.token_layout import check_same_layout

ZOO = REPO / 'fqzoo' / 'zoo_assets'
FAR = (ZOO / 'fqzoo-fmnist-far' / 'fqzoo-fmnist-far.py',
       ZOO / 'fqzoo-fmnist-far' / 'fqzoo-fmnist-far-4ca06088.safetensors')
VQ = (ZOO / 'fqzoo-fmnist-vq' / 'fqzoo-fmnist-vq.py',
      ZOO / 'fqzoo-fmnist-vq' / 'fqzoo-fmnist-vq-7a1ec632.safetensors')


# ------------------------------------------------------------- the helper
def test_input_error_exits_2_with_one_error_line(monkeypatch, capsys):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    with pytest.raises(SystemExit) as exit_:
        with exit_on_input_error():
            print('before')
            raise InputError('a.pth and b.pth do not belong together')
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    assert out == 'before\n'
    assert err == 'error: a.pth and b.pth do not belong together\n'


def test_key_error_refusal_is_printed_without_quotes(monkeypatch, capsys):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    with pytest.raises(SystemExit) as exit_:
        with exit_on_input_error():
            raise InputKeyError('x.pth does not match the model')
    assert exit_.value.code == 2
    assert capsys.readouterr().err == 'error: x.pth does not match the model\n'


@pytest.mark.parametrize('value', ['1', 'true', 'YES', 'on'])
def test_debug_variable_re_raises_the_refusal(monkeypatch, capsys, value):
    monkeypatch.setenv(DEBUG_ENV, value)
    refusal = InputError('bad --classes')
    with pytest.raises(InputError) as info:
        with exit_on_input_error():
            raise refusal
    assert info.value is refusal
    assert capsys.readouterr().err == ''


@pytest.mark.parametrize('value', ['0', '', 'no'])
def test_debug_variable_off_still_exits(monkeypatch, value):
    monkeypatch.setenv(DEBUG_ENV, value)
    with pytest.raises(SystemExit) as exit_:
        with exit_on_input_error():
            raise InputError('bad')
    assert exit_.value.code == 2


@pytest.mark.parametrize('error', [ValueError('a bug'), KeyError('k'),
                                   RuntimeError('boom')])
def test_other_exceptions_pass_unchanged(monkeypatch, capsys, error):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    with pytest.raises(type(error)) as info:
        with exit_on_input_error():
            raise error
    assert info.value is error
    assert capsys.readouterr().err == ''


def test_refusals_keep_their_former_types():
    assert issubclass(InputError, ValueError)
    assert issubclass(InputKeyError, KeyError) and \
        issubclass(InputKeyError, InputError)
    assert issubclass(InputFileNotFoundError, FileNotFoundError) and \
        issubclass(InputFileNotFoundError, InputError)
    assert issubclass(InputTypeError, TypeError) and \
        issubclass(InputTypeError, InputError)


def _mutmut_trampoline(node):
    """The import mutmut adds to the copy of the file it tests (``make
    mutation``): ``from mutmut... import ... as _mutmut_...``."""
    return any(alias.asname and alias.asname.startswith('_mutmut')
               for alias in node.names)


def test_errors_module_imports_only_the_standard_library():
    """fqzoo.errors is the lowest layer (.importlinter): every layer, the
    registry included, imports it, so it imports nothing of fqzoo's nor a
    third-party package."""
    tree = ast.parse((REPO / 'fqzoo' / 'errors.py').read_text())
    imported = {alias.name for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {'.' * node.level + (node.module or '')
                 for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)
                 and not _mutmut_trampoline(node)}
    tops = {name.split('.')[0] for name in imported}
    assert tops and tops <= set(sys.stdlib_module_names), tops


def test_unsafe_checkpoint_is_a_refusal_the_tools_report(
        unsafe_checkpoint, monkeypatch, capsys):
    assert issubclass(UnsafeCheckpointError, InputError) and \
        issubclass(UnsafeCheckpointError, RuntimeError)
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    ckpt, marker = unsafe_checkpoint
    with pytest.raises(SystemExit) as info:
        with exit_on_input_error():
            safe_load(ckpt)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        f'error: Refusing to load {ckpt}: it holds pickled objects'), err
    # the global torch refused: MarkerPayload unpickles by calling open()
    assert err[0].endswith('(Unsupported global: GLOBAL io.open)'), err
    assert not marker.exists()


# ------------------------------------------------- library sites raise it
def test_layout_refusal_is_an_input_error():
    with pytest.raises(InputError, match=r'gen\.pth and tok\.pth do not '
                       r'belong together.*codebook_sizes \[16\] in gen\.pth, '
                       r'\[32\] in tok\.pth'):
        check_same_layout(dict(codebook_sizes=[16]),
                          dict(codebook_sizes=[32]), first_name='gen.pth',
                          second_name='tok.pth')


def test_checkpoint_reading_refusals(tmp_path: Path):
    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint')
    with pytest.raises(InputError, match='notes.pth is not a PyTorch '
                       'checkpoint') as info:
        safe_load(text)
    assert type(info.value) is InputError
    with pytest.raises(InputKeyError, match=r'w\.pth does not match the '
                       r'model Linear.*weight \[3, 2\] vs \[2, 2\]'):
        load_state_dict_checked(nn.Linear(2, 2), nn.Linear(2, 3).state_dict(),
                                'w.pth')
    torch.save(dict(state_dict=nn.Linear(2, 2).state_dict()),
               tmp_path / 'ok.pth')
    assert set(safe_load(tmp_path / 'ok.pth')['state_dict']) == {
        'weight', 'bias'}


def test_missing_files_are_named(tmp_path: Path):
    with pytest.raises(InputFileNotFoundError,
                       match=r'Checkpoint not found: .*gone\.pth'):
        safe_load(tmp_path / 'gone.pth')
    with pytest.raises(InputFileNotFoundError,
                       match=r'Config file not found: .*nope\.py'):
        load_config(tmp_path / 'nope.py')
    with pytest.raises(InputFileNotFoundError, match=r'gone\.pth not found'):
        source_file(tmp_path / 'gone.pth')
    (tmp_path / 'here.pth').write_bytes(b'x')
    assert source_file(tmp_path / 'here.pth')['path'] == str(
        (tmp_path / 'here.pth').resolve())


def test_argument_and_folder_refusals(tmp_path: Path):
    with pytest.raises(InputError, match=r'classes must be whole numbers.*'
                       r'0\.5 \(item 1\)') as info:
        check_classes([1, 0.5], 10)
    assert type(info.value) is InputError
    assert check_classes([3, 1.0], 10) == [3, 1]
    ShardRun(tmp_path, dict(num=4), total=4, shard_size=2, what='samples',
             shard_patterns=['shard_*.npz']).open()
    with pytest.raises(InputError, match=r"holds samples made with other "
                       r"settings \(num: 4 in the folder, now 6\)"):
        ShardRun(tmp_path, dict(num=6), total=6, shard_size=2,
                 what='samples', shard_patterns=['shard_*.npz']).open()


# ------------------------------------------------------------ end to end
@pytest.mark.slow
def test_sample_tool_refuses_the_shipped_far_with_the_vq_tokenizer(tmp_path):
    """The shipped FAR generator (2 x 256 codes) with the shipped VQ
    tokenizer (512 codes): refused before any sampling, in one line."""
    out = tmp_path / 'samples'
    proc = run_tool(['tools/sample.py', str(FAR[0]), str(FAR[1]),
                     '--tokenizer', str(VQ[0]), str(VQ[1]), '--num', '10',
                     '--out', str(out), '--device', 'cpu'], check=False,
                     env={DEBUG_ENV: ''})
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith(
        f'error: the generator checkpoint {FAR[1]} and the tokenizer '
        f'checkpoint {VQ[1]} do not belong together'), lines[-1]
    assert f'codebook_sizes [256, 256] in the generator checkpoint {FAR[1]}, ' \
        f'[512] in the tokenizer checkpoint {VQ[1]}' in lines[-1]
    assert not out.exists()
