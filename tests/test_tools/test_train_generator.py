"""tools/train.py on a tiny FAR over synthetic codes: it trains, its
checkpoints load through init_generator, and resume is bit-exact (dropout,
label dropout, random views and the EMA included)."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, run_tool

from fqzoo.apis import init_generator

GRID, SIZES, VIEWS = (4, 4), [16, 12], 2
# what extract_codes records: the tokenizer's layout and checkpoint
LAYOUT = dict(codebook_sizes=SIZES, sub_tokens=['semantic_clip', 'pixel'],
              downsample_factor=4, grids={'16x16': list(GRID)})
TOKENIZER = dict(path='/models/tok.pth', sha256='ab' * 32)


def write_codes(root: Path, count: int = 24) -> Path:
    """A folder as tools/extract_codes.py --flip writes it."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    codes = np.stack([rng.integers(0, v, (count, VIEWS, *GRID))
                      for v in SIZES], axis=2).astype(np.int16)
    np.save(root / 'codes_00000.npy', codes)
    np.save(root / 'labels_00000.npy', np.arange(count) % 3)
    (root / 'manifest.json').write_text(json.dumps(dict(
        count=count, augmentations=['flip'], num_augs=VIEWS,
        code_shape=list(codes.shape[1:]), codebook_sizes=SIZES,
        token_layout=LAYOUT, tokenizer=TOKENIZER,
        shards=[dict(codes='codes_00000.npy', labels='labels_00000.npy',
                     start=0, count=count)])))
    return root


def write_config(path: Path, work_dir: Path, codes: Path,
                 max_iters: int = 4) -> Path:
    path.write_text(f'''
_base_ = ['{REPO}/configs/far/far_tiny_fmnist.py']
work_dir = '{work_dir}'
codes_root = '{codes}'
model = dict(num_classes=3, tokens=codes_root,
             backbone=dict(width=32, num_layers=1, num_heads=2),
             head=dict(num_heads=2))
train_dataloader = dict(batch_size=4, dataset=dict(data_root=codes_root))
val_dataloader = dict(batch_size=8, dataset=dict(data_root=codes_root))
test_dataloader = val_dataloader
train_cfg = dict(max_iters={max_iters})
param_scheduler = []
custom_hooks = [dict(type='EMAHook', momentum=0.1)]
default_hooks = dict(checkpoint=dict(interval=2), logger=dict(interval=1))
''')
    return path


def _state(path: Path) -> dict:
    return torch.load(path, map_location='cpu', weights_only=True)


@pytest.mark.slow
def test_train_resume_exact_and_load(tmp_path):
    codes = write_codes(tmp_path / 'codes')
    straight = write_config(tmp_path / 'a.py', tmp_path / 'a', codes)
    run_tool(['tools/train.py', str(straight)])
    split = write_config(tmp_path / 'b.py', tmp_path / 'b', codes)
    run_tool(['tools/train.py', str(split), '--cfg-options',
              'train_cfg.max_iters=2'])
    assert not (tmp_path / 'b' / 'iter_4.pth').exists()
    run_tool(['tools/train.py', str(split), '--resume'])
    a, b = _state(tmp_path / 'a' / 'iter_4.pth'), _state(
        tmp_path / 'b' / 'iter_4.pth')
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for key, value in a['state_dict'].items():
        assert torch.equal(value, b['state_dict'][key]), key
    for key, value in a['ema_state_dict'].items():
        assert torch.equal(value, b['ema_state_dict'][key]), key
    sa, sb = a['optimizer']['state'], b['optimizer']['state']
    assert sa.keys() == sb.keys() and len(sa) > 0
    for idx in sa:
        assert torch.equal(sa[idx]['exp_avg'], sb[idx]['exp_avg'])
    # the run trained: weights moved from the zero-initialised outputs
    out = [k for k in a['state_dict'] if k.startswith('head.outputs.')]
    assert len(out) == 2 and all(a['state_dict'][k].abs().sum() > 0
                                 for k in out)
    # the checkpoint records the codes' layout with the generator's grid,
    # and the tokenizer checkpoint that made the codes
    assert a['meta']['token_layout'] == dict(LAYOUT, grid=list(GRID))
    assert a['meta']['tokenizer_checkpoint'] == TOKENIZER
    # no weight decay on norms and biases, 0.05 on matrices
    groups = a['optimizer']['param_groups']
    assert sorted({g['weight_decay'] for g in groups}) == [0.0, 0.05]

    # held-out NLL through tools/test.py (TokenNLL): finite, near log(V)
    # after 4 steps from zero-initialised outputs
    metrics_file = tmp_path / 'metrics.json'
    run_tool(['tools/test.py', str(straight), str(tmp_path / 'a' / 'iter_4.pth'),
              '--work-dir', str(tmp_path / 't'), '--out', str(metrics_file)])
    metrics = json.loads(metrics_file.read_text())
    for g, size in enumerate(SIZES):
        assert abs(metrics[f'nll_{g}'] - np.log(size)) < 0.5
    assert metrics['nll'] == pytest.approx(
        (metrics['nll_0'] + metrics['nll_1']) / 2)

    gen = init_generator(straight, tmp_path / 'a' / 'iter_4.pth')
    assert not gen.training
    assert gen.grid_size == GRID and gen.codebook_sizes == SIZES
    sample = gen.generate(torch.tensor([0, 2]), cfg_scale=1.5)
    assert sample.shape == (2, 2, *GRID)
    for g, size in enumerate(SIZES):
        assert 0 <= int(sample[:, g].min()) and int(sample[:, g].max()) < size


@pytest.mark.slow
def test_dist_train_two_cpu_processes(tmp_path):
    """torchrun, 2 processes, gloo, plain MMDistributedDataParallel: the
    ranks end with identical weights and the checkpoint loads unwrapped."""
    codes = write_codes(tmp_path / 'codes')
    work_dir = tmp_path / 'ddp'
    config = write_config(tmp_path / 'ddp.py', work_dir, codes, max_iters=3)
    config.write_text(config.read_text() + (
        "custom_imports = dict(imports=['conftest'], "
        "allow_failed_imports=False)\n"
        "custom_hooks = [dict(type='_TestDumpWeightsHook')]\n"
        "default_hooks = dict(checkpoint=dict(interval=3))\n"))
    port = 29500 + os.getpid() % 2000 + 7
    proc = run_tool(['bash', 'tools/dist_train.sh', str(config), '2'],
                    timeout=120, env={'PORT': str(port)})
    assert 'Distributed training: True' in proc.stdout + proc.stderr
    rank0 = torch.load(work_dir / 'rank0.pth', weights_only=True)
    rank1 = torch.load(work_dir / 'rank1.pth', weights_only=True)
    assert rank0['params'].keys() == rank1['params'].keys()
    for key, value in rank0['params'].items():
        assert torch.equal(value, rank1['params'][key]), key
    assert not any('.module.' in k for k in rank0['keys'])
    gen = init_generator(config, work_dir / 'iter_3.pth')
    for key, value in gen.state_dict().items():
        if key in rank0['params']:
            assert torch.equal(value, rank0['params'][key]), key


@pytest.mark.slow
def test_codes_of_another_layout_are_refused_before_training(tmp_path):
    """A generator config for 2 x 16 codes on a folder of 16 + 12 codes:
    tools/train.py stops before the first step, naming both, no checkpoint
    written."""
    codes = write_codes(tmp_path / 'codes')
    config = write_config(tmp_path / 'c.py', tmp_path / 'w', codes)
    config.write_text(config.read_text().replace(
        'model = dict(num_classes=3,',
        'model = dict(num_classes=3, codebook_sizes=[16, 16],'))
    proc = run_tool(['tools/train.py', str(config)], check=False)
    assert proc.returncode != 0
    assert (f'codebook_sizes [16, 12] in the train codes {codes}/'
            f'manifest.json, [16, 16] in the model of {config}') in proc.stderr
    assert not list((tmp_path / 'w').rglob('*.pth'))
