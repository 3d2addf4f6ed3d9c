"""tools/publish_model.py on a real training checkpoint (tools/train.py
with an EMA): stripped, EMA or raw weights, sha256 in the name, token layout
in the metadata, and the round trip through every loader."""
import hashlib
import importlib.util
import json
import re
from pathlib import Path

import pytest
import torch
import yaml
from conftest import run_tool, write_tiny_config

from fqzoo.apis import get_model, init_tokenizer
from fqzoo.utils.checkpoint import safe_load, safetensors_metadata

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location(
    'publish_model', REPO / 'tools' / 'publish_model.py')
publish_model = importlib.util.module_from_spec(spec)
spec.loader.exec_module(publish_model)


@pytest.fixture(scope='module')
def ema_run(tmp_path_factory) -> dict:
    """A 4-iteration tiny GAN tokenizer run with MMEngine's EMAHook."""
    root = tmp_path_factory.mktemp('ema_run')
    work_dir = root / 'tiny_ema'
    config = write_tiny_config(
        root / 'tiny_ema.py', work_dir, extra="custom_hooks = [dict("
        "type='EMAHook', momentum=0.5, begin_iter=0)]")
    run_tool(['tools/train.py', str(config)])
    return dict(config=config, work_dir=work_dir,
                checkpoint=work_dir / 'iter_4.pth')


def images() -> torch.Tensor:
    rng = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, 16, 16, generator=rng) * 2 - 1


def outputs(tok) -> tuple:
    x = images()
    return tok.encode(x), tok.reconstruct(x)


def test_ema_weights_round_trip(ema_run, tmp_path, monkeypatch):
    # the commit recorded is HEAD's (+dirty); fixed here, as other work
    # may commit between the two publications below
    assert re.fullmatch(r'[0-9a-f]{40}(\+dirty)?', publish_model.git_commit())
    monkeypatch.setattr(publish_model, 'git_commit', lambda: 'c0ffee')
    out = tmp_path / 'published'
    result = publish_model.main([str(ema_run['checkpoint']), str(out),
                                 '--metric', 'PSNR=12.5', '--image-size', '16',
                                 '--metric-command', 'python tools/test.py X'])
    weights = result['weights']
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert result['sha256'] == digest
    assert weights.name == f'tiny_ema-{digest[:8]}.safetensors'
    # reproducible: the same checkpoint (at one commit) gives the same bytes
    again = publish_model.main([str(ema_run['checkpoint']),
                                str(tmp_path / 'again'), '--image-size', '16'])
    assert again['weights'].read_bytes() == weights.read_bytes()
    # EMA is the default and is what the checkpoint's state_dict holds
    source = safe_load(ema_run['checkpoint'])
    published = safe_load(weights)
    assert not any(k.startswith(('discriminator.', 'perceptual_loss.'))
                   for k in published)
    for key, value in published.items():
        assert torch.equal(value, source['state_dict'][key]), key
    meta = safetensors_metadata(weights)
    assert meta['weights'] == 'ema'
    assert meta['git_commit'] == 'c0ffee'
    assert meta['source_sha256'] == hashlib.sha256(
        ema_run['checkpoint'].read_bytes()).hexdigest()
    layout = json.loads(meta['token_layout'])
    assert layout['codebook_sizes'] == [32]
    assert layout['downsample_factor'] == 2
    assert layout['sub_tokens'] == ['pixel']
    assert layout['grids'] == {'16x16': [8, 8]}
    # every loader reads it and computes what the source checkpoint does
    reference = outputs(init_tokenizer(ema_run['config'],
                                       ema_run['checkpoint']))
    for got in (outputs(init_tokenizer(result['config'], weights)),
                outputs(init_tokenizer(ema_run['config'], weights))):
        assert torch.equal(got[0], reference[0])
        assert torch.equal(got[1], reference[1])
    index = tmp_path / 'model-index.yml'
    (tmp_path / 'metafile.yml').write_text(yaml.safe_dump(dict(Models=[{
        'Name': 'tiny_ema', 'In Collection': 'Tiny',
        'Config': f'published/{result["config"].name}',
        'Metadata': {}, 'Weights': {'repo_id': 'me/tiny_ema',
                                    'filename': weights.name,
                                    'sha256': digest}}])))
    index.write_text(yaml.safe_dump(dict(Import=['metafile.yml'])))
    zoo = outputs(get_model('tiny_ema', pretrained=weights, index=index))
    assert torch.equal(zoo[1], reference[1])
    card = result['card'].read_text()
    for part in (digest, 'iter 4', 'EMA', '| PSNR | 12.5 | `python '
                 'tools/test.py X` |', source['meta']['experiment_name'],
                 'sha256 `' + meta['source_sha256']):
        assert part in card, part


def test_raw_weights_undo_the_ema_swap(ema_run, tmp_path):
    source = safe_load(ema_run['checkpoint'])
    raw_params = {k[len('module.'):]: v
                  for k, v in source['ema_state_dict'].items()
                  if k.startswith('module.')}
    result = publish_model.main([str(ema_run['checkpoint']),
                                 str(tmp_path / 'raw'), '--weights', 'raw'])
    published = safe_load(result['weights'])
    assert safetensors_metadata(result['weights'])['weights'] == 'raw'
    changed = [k for k, v in raw_params.items()
               if k in published and not torch.equal(
                   v, source['state_dict'][k])]
    assert changed  # the EMA differs from the raw weights somewhere
    for key in published:
        want = raw_params.get(key, source['state_dict'][key])
        assert torch.equal(published[key], want), key


def test_metrics_found_in_the_work_dir(ema_run, tmp_path):
    work_dir = tmp_path / 'work'
    (work_dir / 'samples').mkdir(parents=True)
    (work_dir / 'metrics.json').write_text(json.dumps({'PSNR': 20.25}))
    (work_dir / 'samples' / 'metrics.json').write_text(json.dumps(
        {'metrics': {'fid': 7.5, 'note': 'text'}}))
    (work_dir / 'samples' / 'sampling.json').write_text(json.dumps(
        {'eval_command': 'python tools/eval_generation.py S --metrics'}))
    result = publish_model.main([str(ema_run['checkpoint']),
                                 str(tmp_path / 'out'), '--work-dir',
                                 str(work_dir)])
    card = result['card'].read_text()
    assert '| PSNR | 20.25 | command not recorded' in card
    # --metric-command names the command of the files that record none
    result = publish_model.main([str(ema_run['checkpoint']),
                                 str(tmp_path / 'out2'), '--work-dir',
                                 str(work_dir), '--metric-command',
                                 'make quickstart'])
    card = result['card'].read_text()
    assert '| PSNR | 20.25 | `make quickstart`' in card
    assert '| fid | 7.5 | `python tools/eval_generation.py S --metrics`' \
        in card
    assert '| fid | 7.5 | `python tools/eval_generation.py S --metrics`' \
        in card
    assert 'note' not in card


def test_refusals_name_the_file(ema_run, tmp_path):
    no_ema = tmp_path / 'no_ema.pth'
    checkpoint = safe_load(ema_run['checkpoint'])
    del checkpoint['ema_state_dict']
    torch.save(checkpoint, no_ema)
    with pytest.raises(KeyError, match=f'{no_ema} has no ema_state_dict'):
        publish_model.main([str(no_ema), str(tmp_path / 'x'), '--weights',
                            'ema'])
    assert not (tmp_path / 'x').exists()
    other = tmp_path / 'other.py'
    other.write_text(Path(ema_run['config']).read_text().replace(
        'codebook_size=32', 'codebook_size=64'))
    with pytest.raises(KeyError, match='iter_4.pth does not match'):
        publish_model.main([str(ema_run['checkpoint']), str(tmp_path / 'y'),
                            '--config', str(other)])
    with pytest.raises(SystemExit):
        publish_model.parse_args(['a', 'b', '--metric', 'PSNR'])


def test_truncated_safetensors_is_named(ema_run, tmp_path):
    result = publish_model.main([str(ema_run['checkpoint']),
                                 str(tmp_path / 'out')])
    cut = tmp_path / 'cut.safetensors'
    cut.write_bytes(result['weights'].read_bytes()[:-100])
    with pytest.raises(ValueError, match=f'{cut} is not a safetensors file'):
        init_tokenizer(result['config'], cut)
    # found by its header even without the suffix
    renamed = tmp_path / 'weights.bin'
    renamed.write_bytes(result['weights'].read_bytes())
    assert set(safe_load(renamed)) == set(safe_load(result['weights']))


@pytest.mark.slow
def test_tools_test_loads_the_published_file(ema_run, tmp_path):
    """MMEngine's load_from (tools/test.py) reads the safetensors file and
    measures what the source checkpoint measures."""
    result = publish_model.main([str(ema_run['checkpoint']),
                                 str(tmp_path / 'out')])
    scores = {}
    for name, ckpt in (('source', ema_run['checkpoint']),
                       ('published', result['weights'])):
        out = tmp_path / f'{name}.json'
        run_tool(['tools/test.py', str(ema_run['config']), str(ckpt),
                  '--work-dir', str(tmp_path / name), '--out', str(out)])
        scores[name] = json.loads(out.read_text())
    assert scores['published'] == scores['source']
    assert 'psnr' in scores['source']
