"""Pre-flight check of external weights and data (fqzoo.utils.preflight),
tools/train.py / tools/test.py --dry-run and tools/fetch_weights.py with the
libraries' download functions replaced by copies of small local files."""
import runpy
import shutil
import sys
from pathlib import Path

import open_clip
import pytest
import timm.models._hub
import torch
from conftest import REPO, run_tool
from huggingface_hub import constants as hf_constants
from mmengine.config import Config

import fqzoo.engine.runner
from fqzoo.models.backbones.efficientnet_lite0 import default_weights_path
from fqzoo.utils import preflight
from fqzoo.utils.offline import fetch_weights
from fqzoo.utils.preflight import check_config, collect_requirements

FQ2 = REPO / 'configs/fq/fq2_dino_clip.py'
QUICKSTART = REPO / 'configs/quickstart/fq2_effnet_tiny_photos.py'
VGG_URL = 'https://download.pytorch.org/models/vgg16-397923af.pth'
INCEPTION_URL = ('https://github.com/toshas/torch-fidelity/releases/download/'
                 'v0.2.0/weights-inception-2015-12-05-6726825d.pth')
DINO_REPO = 'timm/vit_small_patch14_dinov2.lvd142m'
CLIP_REPO = 'timm/vit_large_patch14_clip_224.openai'

# What fq2_dino_clip.py needs, worked out by reading its config files:
# (start of the description, path, config keys taking the path).
FQ2_NEEDS = {
    ('DINOv2 weights "vit_small_patch14_dinov2"', None,
     ('model.regularizers.1.teacher.checkpoint',)),
    ('CLIP weights "ViT-L-14" / "openai"', None,
     ('model.regularizers.2.teacher.checkpoint',)),
    ('torchvision ImageNet VGG16 weights', None,
     ('model.perceptual_loss.vgg_checkpoint',
      'val_evaluator.2.loss.vgg_checkpoint',
      'test_evaluator.2.loss.vgg_checkpoint')),
    ('torch-fidelity Inception-v3 weights', None,
     ('val_evaluator.4.inception_checkpoint',
      'test_evaluator.4.inception_checkpoint')),
    ('image folder', 'data/imagenet/train',
     ('train_dataloader.dataset.data_root',)),
    ('image folder', 'data/imagenet/val',
     ('val_dataloader.dataset.data_root',
      'test_dataloader.dataset.data_root')),
}


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """Empty torch hub and Hugging Face caches, no network, cwd without a
    data/ folder."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setattr(hf_constants, 'HF_HUB_CACHE', str(tmp_path / 'hf'))
    monkeypatch.setenv('FQZOO_OFFLINE', '1')
    work = tmp_path / 'cwd'
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


def _table(requirements):
    table = set()
    for req in requirements:
        prefix = next(what for what, path, keys in FQ2_NEEDS
                      if req.what.startswith(what) and req.path == path)
        table.add((prefix, req.path, req.keys))
    return table


def test_fq2_dino_clip_lists_everything_missing_in_one_message(empty_caches):
    checks = check_config(Config.fromfile(str(FQ2)), online=False)
    assert [c.status for c in checks] == ['missing'] * len(FQ2_NEEDS)
    assert _table(c.requirement for c in checks) == FQ2_NEEDS
    message = preflight.missing_message(checks, 'configs/fq/fq2_dino_clip.py')
    assert message.count('\n1. ') == 1 and '\n6. ' in message
    for _, _, keys in FQ2_NEEDS:
        assert ', '.join(keys) in message
    for source in (VGG_URL, INCEPTION_URL, DINO_REPO, CLIP_REPO,
                   'image-net.org'):
        assert source in message
    assert ('python tools/fetch_weights.py configs/fq/fq2_dino_clip.py '
            '--out DIR') in message


def test_quickstart_needs_only_the_wheel_weights():
    checks = check_config(Config.fromfile(str(QUICKSTART)), online=False)
    assert len(checks) == 1 and checks[0].status == 'found'
    req = checks[0].requirement
    assert req.path == default_weights_path()
    # the CPU recipe has no perceptual loss (docs/cpu_recipe.md)
    assert set(req.keys) == {
        'model.regularizers.1.teacher.checkpoint',
        'val_evaluator.2.loss', 'val_evaluator.4.checkpoint',
        'test_evaluator.2.loss', 'test_evaluator.4.checkpoint'}


def _statuses(cfg, online=False):
    return {c.requirement.what.split(' ')[0]: c.status
            for c in check_config(cfg, online=online)}


def _write_hf_cache(root: Path, repo: str, filename: str) -> Path:
    """The Hugging Face hub cache layout: refs/main names the snapshot."""
    folder = root / ('models--' + repo.replace('/', '--'))
    (folder / 'refs').mkdir(parents=True)
    (folder / 'refs' / 'main').write_text('0123abcd')
    path = folder / 'snapshots' / '0123abcd' / filename
    path.parent.mkdir(parents=True)
    path.write_bytes(b'weights')
    return path


def test_library_caches_stand_in_for_unset_paths(empty_caches):
    vgg = empty_caches / 'torch' / 'hub' / 'checkpoints' / Path(VGG_URL).name
    vgg.parent.mkdir(parents=True)
    vgg.write_bytes(b'vgg')
    dino = _write_hf_cache(empty_caches / 'hf', DINO_REPO, 'model.safetensors')
    # open_clip's safetensors alternative of open_clip_pytorch_model.bin
    _write_hf_cache(empty_caches / 'hf', CLIP_REPO,
                    'open_clip_model.safetensors')
    checks = check_config(Config.fromfile(str(FQ2)), online=False)
    found = {c.requirement.what.split(' ')[0]: c for c in checks}
    assert {k: c.status for k, c in found.items()} == {
        'DINOv2': 'cached', 'CLIP': 'cached', 'torchvision': 'cached',
        'torch-fidelity': 'missing', 'image': 'missing'}
    assert found['torchvision'].requirement.cache == str(vgg)
    assert found['DINOv2'].requirement.cache == str(dino)


def test_a_configured_path_wins_over_the_cache(empty_caches):
    vgg = empty_caches / 'torch' / 'hub' / 'checkpoints' / Path(VGG_URL).name
    vgg.parent.mkdir(parents=True)
    vgg.write_bytes(b'vgg')
    cfg = Config.fromfile(str(FQ2))
    cfg.merge_from_dict({'model.perceptual_loss.vgg_checkpoint': 'absent.pth',
                         'val_evaluator.4.inception_checkpoint': str(vgg)})
    statuses = {(c.requirement.what.split(' ')[0], c.requirement.path):
                c.status for c in check_config(cfg, online=True)}
    assert statuses[('torchvision', 'absent.pth')] == 'missing'
    # the evaluators still leave vgg_checkpoint unset: the cache serves them
    assert statuses[('torchvision', None)] == 'cached'
    assert statuses[('torch-fidelity', str(vgg))] == 'found'


def test_online_unset_weights_download_but_folders_stay_missing(
        empty_caches):
    statuses = _statuses(Config.fromfile(str(FQ2)), online=True)
    assert statuses == {'DINOv2': 'download', 'CLIP': 'download',
                        'torchvision': 'download',
                        'torch-fidelity': 'download', 'image': 'missing'}


def test_server_answers_honours_offline_variables(monkeypatch):
    asked = []
    monkeypatch.setattr(preflight, '_server_answers',
                        lambda origin: asked.append(origin) or True)
    monkeypatch.delenv('FQZOO_OFFLINE', raising=False)
    monkeypatch.delenv('HF_HUB_OFFLINE', raising=False)
    assert preflight.server_answers(VGG_URL)
    assert asked == ['https://download.pytorch.org']
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    assert not preflight.server_answers(f'{hf_constants.ENDPOINT}/x')
    assert preflight.server_answers(VGG_URL)
    monkeypatch.setenv('FQZOO_OFFLINE', '1')
    assert not preflight.server_answers(VGG_URL)
    assert len(asked) == 2


def test_random_weights_need_nothing():
    cfg = dict(model=dict(
        regularizers=[dict(type='SemanticRegularizer',
                           teacher=dict(type='DINOv2Teacher',
                                        pretrained=False))],
        perceptual_loss=dict(type='LPIPSLoss', pretrained=False)),
        val_evaluator=[dict(type='FID', inception_checkpoint='inc.pth')])
    reqs = collect_requirements(cfg)
    assert [(r.keys, r.path) for r in reqs] == [
        (('val_evaluator.0.inception_checkpoint',), 'inc.pth')]


class FakeDownloads:
    """The libraries' download functions, copying small local files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls = []

    def _file(self, name: str, content: bytes) -> str:
        path = self.root / 'downloads' / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return str(path)

    def timm_hf(self, repo, filename, cache_dir=None):
        self.calls.append(('timm', repo, filename))
        return self._file('dino.safetensors', f'{repo}/{filename}'.encode())

    def open_clip(self, cfg, prefer_hf_hub=True, cache_dir=None):
        self.calls.append(('open_clip', cfg['hf_hub']))
        return self._file('open_clip_model.safetensors',
                          cfg['hf_hub'].encode())

    def torch_hub(self, url, dst, hash_prefix=None, progress=True):
        self.calls.append(('torch.hub', url))
        Path(dst).write_bytes(url.encode())


@pytest.fixture
def fake_downloads(empty_caches, monkeypatch):
    fake = FakeDownloads(empty_caches)
    monkeypatch.setattr(timm.models._hub, 'download_from_hf', fake.timm_hf)
    monkeypatch.setattr(open_clip, 'download_pretrained', fake.open_clip)
    monkeypatch.setattr(torch.hub, 'download_url_to_file', fake.torch_hub)
    return fake


FETCHED = {  # config key -> file in the download folder, content
    'model.regularizers.1.teacher.checkpoint':
        ('vit_small_patch14_dinov2.safetensors',
         f'{DINO_REPO}/model.safetensors'),
    'model.regularizers.2.teacher.checkpoint':
        ('ViT-L-14-openai.safetensors', CLIP_REPO + '/'),
    'model.perceptual_loss.vgg_checkpoint': (Path(VGG_URL).name, VGG_URL),
    'val_evaluator.2.loss.vgg_checkpoint': (Path(VGG_URL).name, VGG_URL),
    'test_evaluator.2.loss.vgg_checkpoint': (Path(VGG_URL).name, VGG_URL),
    'val_evaluator.4.inception_checkpoint':
        (Path(INCEPTION_URL).name, INCEPTION_URL),
    'test_evaluator.4.inception_checkpoint':
        (Path(INCEPTION_URL).name, INCEPTION_URL),
}


def test_fetch_weights_writes_an_override_pointing_at_the_files(
        fake_downloads, empty_caches):
    out = empty_caches / 'weights'
    override = fetch_weights(FQ2, out, log=lambda msg: None)
    assert override == out / 'fq2_dino_clip_offline.py'
    assert sorted(call[0] for call in fake_downloads.calls) == [
        'open_clip', 'timm', 'torch.hub', 'torch.hub']
    for name, content in FETCHED.values():
        assert (out / name).read_bytes() == content.encode()
    # the override equals the config with exactly those keys set
    # (MMEngine's own list-index merge as the reference)
    expected = Config.fromfile(str(FQ2))
    expected.merge_from_dict({key: str(out / name)
                              for key, (name, _) in FETCHED.items()})
    assert Config.fromfile(str(override)).to_dict() == expected.to_dict()
    text = override.read_text()
    assert f"_base_ = '{FQ2}'" in text

    # idempotent: nothing downloaded again, the same override
    fake_downloads.calls.clear()
    fetch_weights(FQ2, out, log=lambda msg: None)
    assert fake_downloads.calls == []
    assert override.read_text() == text

    # the folder can move: its paths follow it
    moved = shutil.move(str(out), str(empty_caches / 'elsewhere'))
    cfg = Config.fromfile(str(Path(moved) / override.name))
    assert cfg.model.perceptual_loss.vgg_checkpoint == str(
        Path(moved) / Path(VGG_URL).name)


def _run_tool_main(tool, argv, monkeypatch):
    """Run ``tools/<tool>`` in this process; returns its SystemExit."""
    monkeypatch.setattr(sys, 'argv', [tool] + argv)
    monkeypatch.setenv('LOCAL_RANK', '0')
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO / 'tools' / tool), run_name='__main__')
    return exit_info.value


def test_train_stops_before_building_the_runner(empty_caches, monkeypatch,
                                                capsys):
    built = []
    monkeypatch.setattr(fqzoo.engine.runner, 'build_runner',
                        lambda cfg: built.append(cfg))
    err = _run_tool_main('train.py', [str(FQ2)], monkeypatch)
    assert built == [] and 'needs 6 file(s) or folder(s)' in str(err.code)
    for _, _, keys in FQ2_NEEDS:
        assert ', '.join(keys) in str(err.code)

    capsys.readouterr()
    err = _run_tool_main('train.py', [str(FQ2), '--dry-run'], monkeypatch)
    out = capsys.readouterr().out
    assert err.code == 1 and built == []
    assert out.count('[ missing]') == len(FQ2_NEEDS)
    assert 'needs 6 file(s) or folder(s)' in out

    err = _run_tool_main('train.py', [str(QUICKSTART), '--dry-run'],
                         monkeypatch)
    assert err.code == 0 and built == []
    assert '[   found] EfficientNet-Lite0' in capsys.readouterr().out


def test_test_tool_checks_the_checkpoint_too(empty_caches, monkeypatch,
                                             capsys):
    err = _run_tool_main('test.py', [str(QUICKSTART), 'absent.pth',
                                     '--dry-run'], monkeypatch)
    assert err.code == 1
    out = capsys.readouterr().out
    assert '[ missing] checkpoint to load: absent.pth (load_from)' in out
    assert 'needs 1 file(s)' in out


@pytest.mark.slow
def test_dry_run_passes_with_the_fetched_override(fake_downloads,
                                                  empty_caches):
    """The CLI on the override config: exit 0 once the weights are fetched
    and the image folders exist (the bare config's exit 1 is checked in
    process above)."""
    override = fetch_weights(FQ2, empty_caches / 'weights',
                             log=lambda msg: None)
    imagenet = empty_caches / 'imagenet'
    for split in ('train', 'val'):
        (imagenet / split).mkdir(parents=True)
    roots = [f'{loader}_dataloader.dataset.data_root={imagenet}'
             for loader in ('train', 'val', 'test')]
    env = {'TORCH_HOME': str(empty_caches / 'torch'),
           'HF_HUB_CACHE': str(empty_caches / 'hf'), 'FQZOO_OFFLINE': '1'}
    proc = run_tool(['tools/train.py', str(override), '--dry-run',
                     '--cfg-options'] + roots, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count('[   found]') == len(FQ2_NEEDS)
    assert str(empty_caches / 'weights' / Path(VGG_URL).name) in proc.stdout
