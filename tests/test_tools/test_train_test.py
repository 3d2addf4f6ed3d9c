"""tools/train.py, tools/test.py and tools/quickstart.py end to end (tiny GAN
tokenizer on CPU, subprocesses)."""
import json
import os

import pytest
import torch
from conftest import run_tool, write_tiny_config
from PIL import Image

from fqzoo.apis import init_tokenizer


def test_train_saves_checkpoints_that_load_weights_only(trained_run):
    work_dir = trained_run['work_dir']
    ckpts = sorted(work_dir.glob('iter_*.pth'))
    assert [c.name for c in ckpts] == ['iter_2.pth', 'iter_4.pth']
    assert (work_dir / 'last_checkpoint').read_text().strip().endswith(
        'iter_4.pth')
    for ckpt in ckpts:
        state = torch.load(ckpt, map_location='cpu', weights_only=True)
        assert {'meta', 'state_dict', 'message_hub', 'optimizer',
                'param_schedulers'} <= set(state)
        assert set(state['optimizer']) == {'autoencoder', 'discriminator'}
        assert any(k.startswith('discriminator.') for k in state['state_dict'])
        # the token layout, as plain values: one 32-code VQ branch, 16x16
        # training images downsampled twice to an 8x8 grid
        assert state['meta']['token_layout'] == dict(
            codebook_sizes=[32], sub_tokens=['pixel'], downsample_factor=2,
            grids={'16x16': [8, 8]})


def _state(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def test_resume_gives_identical_weights(trained_run, tmp_path):
    """4 iterations straight (``trained_run``: the same tiny config, only
    its work dir differs) == 2 iterations, stop, resume to 4 (both
    optimizers step from iteration 1)."""
    split = write_tiny_config(tmp_path / 'b.py', tmp_path / 'b')
    run_tool(['tools/train.py', str(split), '--cfg-options',
              'train_cfg.max_iters=2'])
    assert not (tmp_path / 'b' / 'iter_4.pth').exists()
    proc = run_tool(['tools/train.py', str(split), '--resume'])
    assert 'resumed epoch: 0, iter: 2' in proc.stdout + proc.stderr
    a, b = _state(trained_run['checkpoint']), _state(
        tmp_path / 'b' / 'iter_4.pth')
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for key, value in a['state_dict'].items():
        assert torch.equal(value, b['state_dict'][key]), key
    for name in ('autoencoder', 'discriminator'):
        sa = a['optimizer'][name]['state']
        sb = b['optimizer'][name]['state']
        assert sa.keys() == sb.keys() and len(sa) > 0
        for idx in sa:
            assert torch.equal(sa[idx]['exp_avg'], sb[idx]['exp_avg'])
    assert a['message_hub']['runtime_info']['iter'] == \
        b['message_hub']['runtime_info']['iter']


def test_resume_from_explicit_checkpoint(trained_run, tmp_path):
    proc = run_tool(['tools/train.py', str(trained_run['config']),
                     '--work-dir', str(tmp_path / 'w'),
                     '--resume', str(trained_run['work_dir'] / 'iter_2.pth')])
    assert 'resumed epoch: 0, iter: 2' in proc.stdout + proc.stderr
    assert (tmp_path / 'w' / 'iter_4.pth').exists()


def _assert_refused(proc, marker):
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert 'error: Refusing to load' in proc.stderr
    assert not marker.exists()


def test_train_refuses_unsafe_checkpoint(trained_run, unsafe_checkpoint,
                                         tmp_path):
    ckpt, marker = unsafe_checkpoint
    config = str(trained_run['config'])
    _assert_refused(run_tool(
        ['tools/train.py', config, '--work-dir', str(tmp_path / 'r'),
         '--resume', str(ckpt)], check=False), marker)
    _assert_refused(run_tool(
        ['tools/train.py', config, '--work-dir', str(tmp_path / 'l'),
         '--cfg-options', f'load_from={ckpt}'], check=False), marker)


def test_test_tool_writes_metrics_and_refuses_unsafe(trained_run,
                                                     unsafe_checkpoint,
                                                     tmp_path):
    out = tmp_path / 'metrics.json'
    run_tool(['tools/test.py', str(trained_run['config']),
              str(trained_run['checkpoint']), '--work-dir',
              str(tmp_path / 't'), '--out', str(out)])
    metrics = json.loads(out.read_text())
    assert {'psnr', 'usage', 'perplexity'} <= set(metrics)
    assert metrics['psnr'] > 0
    ckpt, marker = unsafe_checkpoint
    _assert_refused(run_tool(
        ['tools/test.py', str(trained_run['config']), str(ckpt),
         '--work-dir', str(tmp_path / 'u')], check=False), marker)


def test_quickstart_writes_metrics_and_grid(tmp_path):
    config = write_tiny_config(tmp_path / 'q.py', tmp_path / 'ignored')
    work_dir = tmp_path / 'quick'
    proc = run_tool(['tools/quickstart.py', str(config), '--work-dir',
                     str(work_dir), '--max-iters', '2', '--num-images', '8'])
    metrics = json.loads((work_dir / 'metrics.json').read_text())
    assert 'psnr' in metrics and 'usage' in metrics
    assert 'psnr' in proc.stdout
    # 8 pairs of 16x16 images upscaled 6x (to about 96 px), 4 pairs
    # (8 images) per row, padding 2
    assert Image.open(work_dir / 'reconstructions.png').size == (
        8 * 98 + 2, 2 * 98 + 2)
    assert (work_dir / 'iter_2.pth').exists()


def test_train_refuses_a_non_positive_codebook_size(tmp_path):
    """A bad model config is a refusal: one ``error:`` line and exit 2,
    raised while the runner builds the model, before any data or training
    (``--dry-run`` only checks the config's files, not the model)."""
    proc = run_tool(['tools/train.py',
                     'configs/quickstart/fq2_effnet_tiny_photos.py',
                     '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                     'model.quantizer.quantizer.codebook_size=0'],
                    check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.startswith(
        'error: VectorQuantizer: codebook_size must be a positive integer, '
        'got 0\n'), proc.stderr[-3000:]
    assert not list((tmp_path / 'w').rglob('*.pth'))


@pytest.mark.skipif(torch.cuda.is_available(), reason='tests the CPU refusal')
def test_amp_on_cpu_fails_clearly(trained_run, tmp_path):
    proc = run_tool(['tools/train.py', str(trained_run['config']), '--amp',
                     '--work-dir', str(tmp_path / 'w')], check=False)
    assert proc.returncode != 0
    assert '--amp needs a GPU' in proc.stderr


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason='MMEngine\'s AmpOptimWrapper needs a GPU')
def test_amp_trains_on_gpu(tmp_path):
    config = write_tiny_config(tmp_path / 'amp.py', tmp_path / 'w')
    proc = run_tool(['tools/train.py', str(config), '--amp'])
    assert 'AmpOptimWrapper' in proc.stdout + proc.stderr


@pytest.mark.slow
def test_dist_train_two_cpu_processes(tmp_path):
    """torchrun, 2 processes, gloo, TokenizerDistributedDataParallel; both
    optimizers step, the ranks end with the same parameters (BatchNorm
    buffers are rank-local with broadcast_buffers=False) and the checkpoint
    has the keys of an unwrapped model."""
    work_dir = tmp_path / 'ddp'
    config = write_tiny_config(
        tmp_path / 'ddp.py', work_dir, max_iters=3, checkpoint_interval=3,
        extra="custom_hooks = [dict(type='_TestDumpWeightsHook')]")
    port = 29500 + os.getpid() % 2000
    proc = run_tool(['bash', 'tools/dist_train.sh', str(config), '2'],
                    timeout=90, env={'PORT': str(port)})
    log = proc.stdout + proc.stderr
    assert 'Distributed training: True' in log
    assert 'loss_disc' in log
    assert (work_dir / 'iter_3.pth').exists()
    rank0 = torch.load(work_dir / 'rank0.pth', weights_only=True)
    rank1 = torch.load(work_dir / 'rank1.pth', weights_only=True)
    assert any(k.startswith('discriminator.') for k in rank0['params'])
    for key, value in rank0['params'].items():
        assert torch.equal(value, rank1['params'][key]), key
    state = torch.load(work_dir / 'iter_3.pth', weights_only=True)
    assert list(state['state_dict']) == rank0['keys']
    assert not any('.module.' in k for k in rank0['keys'])
    init_tokenizer(config, work_dir / 'iter_3.pth')


@pytest.mark.slow
def test_quickstart_config_trains_and_scores_whole_photos(tmp_path):
    """The real `make quickstart` config, 2 iterations: it builds, trains,
    and its summary holds the whole-photo and tiled scores of the held-out
    photos, with the strip original | whole | tiled."""
    work_dir = tmp_path / 'quick'
    proc = run_tool([
        'tools/quickstart.py', 'configs/quickstart/fq2_effnet_tiny_photos.py',
        '--work-dir', str(work_dir), '--max-iters', '2', '--num-images', '4',
        '--whole-size', '64', '--cfg-options', 'train_dataloader.batch_size=4',
        'val_dataloader.dataset.num_samples=8',
        'test_dataloader.dataset.num_samples=8'])
    metrics = json.loads((work_dir / 'metrics.json').read_text())
    for mode in ('whole', 'tiled'):
        for photo in ('coffee', 'grace_hopper', ):
            assert 0 < metrics[f'{mode}/{photo}/psnr'] < 60
            assert 0 <= metrics[f'{mode}/{photo}/colour_shift'] <= 255
        assert metrics[f'{mode}/psnr'] == pytest.approx(
            (metrics[f'{mode}/coffee/psnr']
             + metrics[f'{mode}/grace_hopper/psnr']) / 2)
    assert 'whole/psnr' in proc.stdout
    # 2 photos x (original, whole, tiled), 64 px each, padding 2
    assert Image.open(work_dir / 'whole_photos.png').size == (
        3 * 66 + 2, 2 * 66 + 2)
