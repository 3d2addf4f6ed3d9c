"""tools/analyze_codebook.py and fqzoo.apis.codebook_analysis."""
import json
import math

import numpy as np
import pytest
import torch
from conftest import TinySyntheticImages, run_tool, write_tiny_config
from PIL import Image

from fqzoo.apis import init_tokenizer
from fqzoo.apis.codebook_analysis import (
    analyze_codebook,
    code_vectors,
    project_2d,
    usage_stats,
)
from fqzoo.registry import QUANTIZERS

FQ_CONFIG = '''_base_ = ['./tiny_vq.py']
model = dict(quantizer=dict(_delete_=True, type='FactorizedQuantizer',
                            num_codebooks=2,
                            quantizer=dict(type='VectorQuantizer',
                                           codebook_size=16, embed_dim=4)))
'''


@pytest.fixture
def fq_config(tmp_path):
    write_tiny_config(tmp_path / 'tiny_vq.py', tmp_path / 'w')
    config = tmp_path / 'tiny_fq.py'
    config.write_text(FQ_CONFIG)
    return config


def stats_by_hand(counts: np.ndarray) -> list:
    """Per row of code counts: the fraction of codes used, exp of the
    entropy in nats of the frequencies, used and dead codes."""
    stats = []
    for row in counts:
        probs = [c / row.sum() for c in row if c > 0]
        used = len(probs)
        stats.append(dict(usage=used / len(row), used=used,
                          dead=len(row) - used,
                          perplexity=math.exp(-sum(p * math.log(p)
                                                   for p in probs))))
    return stats


def assert_stats(got: list, want: list) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g == pytest.approx(w, rel=1e-9)


@pytest.mark.slow
def test_analyze_codebook_tool(fq_config, tmp_path):
    checkpoint = tmp_path / 'fq.pth'
    torch.save(dict(state_dict=init_tokenizer(fq_config).state_dict()),
               checkpoint)
    out = tmp_path / 'analysis'
    run_tool(['tools/analyze_codebook.py', str(fq_config), str(checkpoint),
              '--out', str(out)])
    stats = json.loads((out / 'stats.json').read_text())
    assert stats['num_codebooks'] == 2 and stats['num_samples'] == 8
    # the val split (8 images, seed 1) encoded here and counted by hand
    tok = init_tokenizer(fq_config, checkpoint)
    dataset = TinySyntheticImages(num_samples=8, seed=1)
    indices = tok.encode(torch.stack([dataset[i]['inputs']
                                      for i in range(8)])).numpy()
    counts = np.stack([np.bincount(indices[:, g].ravel(), minlength=16)
                       for g in range(2)])
    np.testing.assert_array_equal(np.load(out / 'counts.npy'), counts)
    assert_stats(stats['sub_codebooks'], stats_by_hand(counts))
    for name in ('usage.png', 'embedding.png'):
        assert Image.open(out / name).size[0] > 100


def test_analyze_codebook_counts_and_plots(fq_config, tmp_path):
    tok = init_tokenizer(fq_config)
    dataset = TinySyntheticImages(num_samples=6)
    files = analyze_codebook(tok, dataset, tmp_path, method='tsne',
                             max_codes=10)
    counts = np.load(files['counts'])
    assert counts.shape == (2, 16)
    assert (counts.sum(1) == 6 * 8 * 8).all()
    images = torch.stack([dataset[i]['inputs'] for i in range(6)])
    indices = tok.encode(images)
    for g in range(2):
        assert np.array_equal(counts[g], torch.bincount(
            indices[:, g].flatten(), minlength=16).numpy())
    stats = json.loads(files['stats'].read_text())
    assert stats['embedded_codes'] == 10 and stats['method'] == 'tsne'
    assert_stats(stats['sub_codebooks'], stats_by_hand(counts))
    assert files['usage'].is_file() and files['embedding'].is_file()


def test_usage_stats():
    (stats,) = usage_stats(torch.tensor([[2, 2, 0, 0]]))
    assert stats['usage'] == 0.5 and stats['dead'] == 2
    assert stats['perplexity'] == pytest.approx(2.0)
    # unequal frequencies: perplexity 2.55 (of 3 used codes), not 3
    counts = np.array([[5, 3, 1, 0, 0, 0], [0, 0, 0, 0, 0, 9],
                       [1, 1, 1, 1, 1, 4]])
    assert_stats(usage_stats(torch.from_numpy(counts)),
                 stats_by_hand(counts))
    assert stats_by_hand(counts)[0]['perplexity'] == pytest.approx(2.5520,
                                                                   abs=1e-4)


def test_pca_projection_by_hand():
    """The 2-D PCA points are the centred data on the covariance's two
    leading eigenvectors (NumPy's eigh), up to each axis's sign."""
    rng = np.random.default_rng(0)
    data = rng.normal(size=(40, 5)) * np.array([5.0, 0.3, 2.0, 1.0, 0.1])
    data = data @ np.linalg.qr(rng.normal(size=(5, 5)))[0] + 3.0
    centred = data - data.mean(0)
    values, vectors = np.linalg.eigh(np.cov(centred, rowvar=False))
    expected = centred @ vectors[:, np.argsort(values)[::-1][:2]]
    points = project_2d(torch.from_numpy(data).float())
    for k in range(2):
        sign = np.sign(points[:, k] @ expected[:, k])
        np.testing.assert_allclose(sign * points[:, k], expected[:, k],
                                   rtol=0, atol=1e-4)


@pytest.mark.parametrize('cfg', [
    dict(type='VectorQuantizer', codebook_size=8, embed_dim=4),
    dict(type='FactorizedQuantizer', num_codebooks=2,
         quantizer=dict(type='VectorQuantizer', codebook_size=8, embed_dim=4)),
    dict(type='ResidualVQ', depth=2,
         quantizer=dict(type='VectorQuantizer', codebook_size=8, embed_dim=4)),
    dict(type='FSQ', levels=[3, 3]),
    dict(type='LookupFreeQuantizer', embed_dim=4),
])
def test_code_vectors_for_every_quantizer_kind(cfg):
    quantizer = QUANTIZERS.build(cfg).eval()
    size = quantizer.codebook_size
    last = quantizer.num_codebooks - 1
    vectors = code_vectors(quantizer, torch.arange(size), last, chunk=3)
    assert vectors.shape == (size, quantizer.in_channels)
    assert torch.unique(vectors, dim=0).shape[0] == size
    assert project_2d(vectors).shape == (size, 2)
    if cfg['type'] == 'FactorizedQuantizer':   # only branch 1's channels move
        assert vectors[:, :4].abs().max() == 0
        torch.testing.assert_close(
            vectors[:, 4:], quantizer.subs[1].embedding.weight
            - quantizer.subs[1].embedding.weight[:1])
