"""fqzoo.ablation on token generators: the model description (head,
sub-tokens, grid), held-out NLL and, with ``sample_eval``, sampling and
generation metrics per guidance scale, through the real tools."""
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, tool_env, write_tiny_config
from mmengine.config import Config

from fqzoo.ablation import (
    RunResult,
    describe_model,
    markdown_table,
    metric_columns,
    read_scalars,
    run_ablation,
    run_one,
    sample_eval_spec,
    write_report,
)
from fqzoo.apis import init_tokenizer
from fqzoo.datasets.fashion_mnist import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC

GRID, SIZES = (4, 4), [16, 16]
# FQ-2 over 2 x 16 codes, downsampling 8: a 4x4 grid decodes to 32x32
# images, the Fashion-MNIST classifier's input size.
TOKENIZER = '''_base_ = ['./tiny_vq.py']
model = dict(
    encoder=dict(ch_mult=(1, 2, 2, 2)), decoder=dict(ch_mult=(1, 2, 2, 2)),
    quantizer=dict(_delete_=True, type='FactorizedQuantizer', num_codebooks=2,
                   quantizer=dict(type='VectorQuantizer', codebook_size=16,
                                  embed_dim=4)))
'''


def write_codes(root: Path, count: int = 12) -> Path:
    """A folder as tools/extract_codes.py writes it (3 classes)."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    codes = np.stack([rng.integers(0, v, (count, *GRID)) for v in SIZES],
                     axis=1).astype(np.int16)
    np.save(root / 'codes_00000.npy', codes)
    np.save(root / 'labels_00000.npy', np.arange(count) % 3)
    (root / 'manifest.json').write_text(json.dumps(dict(
        count=count, augmentations=[], num_augs=1,
        code_shape=list(codes.shape[1:]), codebook_sizes=SIZES,
        shards=[dict(codes='codes_00000.npy', labels='labels_00000.npy',
                     start=0, count=count)])))
    return root


def write_fmnist_test_split(root: Path, count: int = 20) -> Path:
    """A Fashion-MNIST folder whose test split has ``count`` random images
    (the classifier metrics' reference, small enough to be quick)."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, magic, array in (
            ('t10k-images-idx3-ubyte', IDX_IMAGES_MAGIC,
             rng.integers(0, 256, (count, 28, 28))),
            ('t10k-labels-idx1-ubyte', IDX_LABELS_MAGIC,
             np.arange(count) % 10)):
        header = b''.join(v.to_bytes(4, 'big') for v in (magic, *array.shape))
        (root / name).write_bytes(header + array.astype(np.uint8).tobytes())
    return root


def write_tokenizer(root: Path) -> tuple:
    """A random tiny FQ-2 tokenizer's config and checkpoint."""
    write_tiny_config(root / 'tiny_vq.py', root / 'unused')
    config = root / 'tok.py'
    config.write_text(TOKENIZER)
    torch.manual_seed(0)
    checkpoint = root / 'tok.pth'
    torch.save(dict(state_dict=init_tokenizer(config).state_dict()),
               checkpoint)
    return str(config), str(checkpoint)


def write_generators(root: Path, codes: Path, sample_eval: str) -> list:
    """``ar_head.py`` (the factorized AR head) and ``linear_head.py``
    (parallel linear classifiers) over ``codes``, 2 iterations, validated
    at each; ``sample_eval`` is the base's entry as config text."""
    (root / 'base.py').write_text(f'''
_base_ = ['{REPO}/configs/far/far_tiny_fmnist.py']
codes_root = '{codes}'
model = dict(num_classes=3, tokens=codes_root,
             backbone=dict(width=16, num_layers=1, num_heads=2),
             head=dict(num_heads=2))
train_dataloader = dict(batch_size=4, dataset=dict(data_root=codes_root))
val_dataloader = dict(batch_size=12, dataset=dict(data_root=codes_root))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=2, val_interval=1)
param_scheduler = []
custom_hooks = []
default_hooks = dict(checkpoint=dict(interval=2), logger=dict(interval=1))
sample_eval = {sample_eval}
''')
    (root / 'ar_head.py').write_text("_base_ = ['./base.py']\n")
    (root / 'linear_head.py').write_text(
        "_base_ = ['./base.py']\nmodel = dict(head=dict(_delete_=True, "
        "type='ParallelLinearHead'))\n")
    return [str(root / 'ar_head.py'), str(root / 'linear_head.py')]


@pytest.mark.slow
def test_generator_ablation_samples_and_scores(tmp_path):
    """Two heads, trained and tested (NLL); the AR head sampled at guidance
    scale 2 and scored by the Fashion-MNIST classifier, the linear head only
    sampled, at scale 1 (7 processes in all); the report shows both."""
    tokenizer = write_tokenizer(tmp_path)
    fmnist = write_fmnist_test_split(tmp_path / 'fmnist')
    configs = write_generators(tmp_path, write_codes(tmp_path / 'codes'), f'''\
dict(tokenizer={tokenizer!r}, num=6, cfg_scale=[2.0], batch_size=6,
     sample_args=['--device', 'cpu'],
     eval_args=['--metrics', '--fmnist-classifier', '--fmnist-root',
                '{fmnist}', '--device', 'cpu'])''')
    with open(configs[1], 'a') as f:
        f.write('sample_eval = dict(cfg_scale=1, eval_args=None)\n')
    out = tmp_path / 'ablation'
    results = run_ablation(configs, str(out), env=tool_env())
    assert [r.reason for r in results] == ['', '']
    ar, linear = results
    assert (ar.model, linear.model) == ('FactorizedARHead',
                                        'ParallelLinearHead')
    assert ar.codebook_sizes == SIZES and ar.grid == '4x4'
    assert ar.bits_per_token == 8.0
    for key in ('nll', 'nll_0', 'nll_1', 'bits_per_position'):
        assert math.isfinite(ar.metrics[key]), key
    assert 0 <= ar.metrics['fmnist_class_accuracy@cfg2.0'] <= 1
    assert ar.metrics['fid_fmnist_classifier@cfg2.0'] > 0
    assert ar.metrics['images_per_s@cfg2.0'] > 0
    with np.load(out / 'ar_head' / 'seed_0' / 'samples_cfg2.0'
                 / 'samples.npz') as data:
        assert data['arr_0'].shape == (6, 32, 32, 3)
        assert data['arr_1'].tolist() == [0, 1, 2, 0, 1, 2]
    assert {k for k in linear.metrics if '@' in k} == {
        'images_per_s@cfg1.0', 'tokens_per_s@cfg1.0'}
    assert linear.eval_time_s > 0

    files = write_report(results, str(out))
    table = files['md'].read_text()
    assert '| ar_head | FactorizedARHead | 16 x 2 | 8.0 | 4x4 |' in table
    assert '| linear_head | ParallelLinearHead | 16 x 2 | 8.0 | 4x4 |' in table
    header = table.split('\n| ar_head')[0]
    assert 'fid_fmnist_classifier@cfg2.0' in header
    assert 'images_per_s' not in header
    with open(files['csv']) as f:
        rows = {row['name']: row for row in csv.DictReader(f)}
    assert rows['ar_head']['fmnist_class_accuracy@cfg2.0']
    assert rows['linear_head']['fmnist_class_accuracy@cfg2.0'] == ''
    assert rows['linear_head']['images_per_s@cfg1.0']
    curve = read_scalars(out / 'ar_head' / 'seed_0')[1]
    assert [r['iter'] for r in curve if 'nll' in r] == [1, 2]
    assert files['png'].stat().st_size > 0


def test_describe_model_tells_tokenizers_from_generators(tmp_path):
    configs = write_generators(tmp_path, write_codes(tmp_path / 'codes'),
                               'None')
    ar = describe_model(Config.fromfile(configs[0]))
    assert ar['model'] == 'FactorizedARHead'
    assert (ar['codebook_sizes'], ar['grid'], ar['bits_per_token']) == (
        SIZES, '4x4', 8.0)
    assert describe_model(Config.fromfile(configs[1]))['model'] == \
        'ParallelLinearHead'
    tokenizer = describe_model(Config.fromfile(write_tokenizer(tmp_path)[0]))
    assert tokenizer['model'] == 'FactorizedQuantizer(VectorQuantizer)'
    assert (tokenizer['codebook_sizes'], tokenizer['grid']) == (SIZES, '')


def test_sample_eval_is_checked_before_training(tmp_path):
    codes = write_codes(tmp_path / 'codes')
    tok_config, _ = write_tokenizer(tmp_path)
    spec = sample_eval_spec(Config(dict(sample_eval=dict(
        tokenizer=(tok_config, tok_config), num=6, cfg_scale=3))))
    assert spec == dict(tokenizer=[tok_config, tok_config], num=6,
                        cfg_scale=[3.0], batch_size=32, sample_args=[],
                        eval_args=[])
    assert sample_eval_spec(Config(dict(sample_eval=None))) is None
    with pytest.raises(ValueError, match=r"unknown keys \['scale'\]"):
        sample_eval_spec(Config(dict(sample_eval=dict(
            tokenizer=(tok_config, tok_config), num=6, scale=3))))
    config = write_generators(tmp_path, codes, f'''dict(
    tokenizer=({tok_config!r}, 'missing.pth'), num=6)''')[0]
    result = run_one(config, tmp_path / 'run', 0, env=tool_env())
    assert result.reason == 'FileNotFoundError: sample_eval: missing.pth ' \
        'not found'
    assert result.model == 'FactorizedARHead'
    assert not (tmp_path / 'run' / 'train.log').exists()


def _result(name: str, sizes: list, metrics: dict) -> RunResult:
    return RunResult(config=f'{name}.py', name=name, seed=0, status='ok',
                     metrics=metrics, model='Head', codebook_sizes=sizes,
                     bits_per_token=sum(map(math.log2, sizes)), grid='8x8',
                     params=1_440_000)


def test_generator_columns():
    sampled = dict(nll=2.0, nll_0=2.5, nll_1=1.5, ppl_0=12.2, ppl_1=4.5,
                   bits_per_position=5.8)
    for scale in ('3.0', '1.0'):
        sampled.update({f'fmnist_class_accuracy@cfg{scale}': 0.8,
                        f'fid_fmnist_classifier@cfg{scale}': 9.0,
                        f'images_per_s@cfg{scale}': 50.0})
    results = [_result('far', [256, 256], sampled),
               _result('ar', [512], dict(nll=4.0, nll_0=4.0, ppl_0=54.6,
                                         bits_per_position=5.8))]
    assert [key for _, key in metric_columns(results)] == [
        'nll', 'nll_0', 'nll_1', 'bits_per_position',
        'fmnist_class_accuracy@cfg1.0', 'fid_fmnist_classifier@cfg1.0',
        'fmnist_class_accuracy@cfg3.0', 'fid_fmnist_classifier@cfg3.0']
    assert [key for _, key in metric_columns(results[1:])] == [
        'nll', 'bits_per_position']
    table = markdown_table(results)
    assert table.splitlines()[0].startswith(
        '| config | model | tokens (V x G) | bits/token | grid | nll |')
    assert '| far | Head | 256 x 2 | 16.0 | 8x8 | 2.000 |' in table
    assert '| ar | Head | 512 x 1 | 9.0 | 8x8 | 4.000 |' in table
    mixed = _result('mixed', [16, 12], {})
    assert '| mixed | Head | (16, 12) | 7.6 |' in markdown_table([mixed])


def test_tokenizer_columns_in_order_with_the_classifier_agreement():
    metrics = dict(usage_1=0.9, perplexity_0=300.0, fmnist_recon_agreement=0.9,
                   psnr=27.0, fid_fmnist_recon=2.0, usage_0=1.0, ssim=0.88,
                   perplexity_1=310.0, usage=0.95, perplexity=305.0)
    results = [_result('fq2', [512, 512], metrics)]
    assert [key for _, key in metric_columns(results)] == [
        'psnr', 'ssim', 'fid_fmnist_recon', 'fmnist_recon_agreement',
        'usage_0', 'usage_1', 'perplexity_0', 'perplexity_1']
