"""README.md and docs/*.md stay true to the code they describe.

Each test reads a claim out of the docs and checks it against the thing
itself: the files named exist, the quoted error is the registry's, the
ImageNet override reaches every loader, the extras and configs listed are
the ones setup.cfg and configs/ hold.
"""
import argparse
import configparser
import re
import shlex
from pathlib import Path

import pytest
from mmengine.config import DictAction
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

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
    quoted = re.search(r"^KeyError: .*Unknown quantizer type \"(\w+)\".*$",
                       text, flags=re.M)
    assert quoted is not None
    with pytest.raises(KeyError) as error:
        QUANTIZERS.build(dict(type=quoted.group(1)))
    # The last line of the traceback a user sees. Other tests register
    # test-only quantizers (names starting with '_') in this process; a
    # user's process has only fqzoo's.
    message = re.sub(r', _\w+', '', str(error.value))
    assert quoted.group(0) == f'KeyError: {message}'


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
