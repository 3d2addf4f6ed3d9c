"""The evaluation metrics keep statistics, not images: what they hold does
not depend on the image size and grows per image by a few floats at most
(features for the FID metrics); CodebookUsage keeps one count table that
matches a direct count. Uses tools/benchmarks/eval_memory.py's helpers."""
import importlib.util
import math
import sys
from collections import Counter
from itertools import islice

import pytest
import torch
from conftest import REPO

from fqzoo.evaluation import CodebookUsage


def _load_benchmark():
    spec = importlib.util.spec_from_file_location(
        'eval_memory', REPO / 'tools' / 'benchmarks' / 'eval_memory.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load_benchmark()


def test_state_bytes_counts_a_shared_storage_once():
    batch = torch.zeros(2, 100)  # 800 bytes of storage
    views = [batch[0], batch[1]]
    expected = (sys.getsizeof(views) + 2 * sys.getsizeof(batch[0])
                + 800)
    assert bench.state_bytes(views) == expected
    floats = [0.5, 1.5]
    assert bench.state_bytes(floats) == sys.getsizeof(floats) + 2 * 24


def test_codebook_usage_streams_counts_and_matches_a_direct_count():
    groups, size = 2, 8
    batches = list(islice(bench.synthetic_batches(
        batch_size=3, image_size=4, groups=groups, grid=2,
        codebook_size=size, seed=1), 5))
    metric = CodebookUsage()
    for batch in batches:
        metric.process(None, batch)
        table, *middle, latest = metric.results
        assert table.shape == (groups, size)
        assert middle == [0] * (len(metric.results) - 2)
        assert torch.equal(latest['indices'], batch[-1]['indices'])
        # its own storage, not a view keeping the batch's indices alive
        assert latest['indices'].untyped_storage().nbytes() == \
            latest['indices'].numel() * 8
    expected = {}
    for g in range(groups):
        counts = Counter(int(code) for batch in batches for sample in batch
                         for code in sample['indices'][g].flatten())
        total = sum(counts.values())
        entropy = -sum(c / total * math.log(c / total)
                       for c in counts.values())
        expected[f'usage_{g}'] = len(counts) / size
        expected[f'perplexity_{g}'] = math.exp(entropy)
    expected['usage'] = (expected['usage_0'] + expected['usage_1']) / 2
    expected['perplexity'] = (expected['perplexity_0']
                              + expected['perplexity_1']) / 2
    assert metric.evaluate(15) == pytest.approx(expected)


# bytes a metric may add per image, [low, high]: a Python float (24 B,
# plus an 8 B list slot and the list's over-allocation), a list of G = 2
# floats, a list slot (0), or the two 1280-d float32 feature vectors
# (inputs and reconstructions, 10240 B) of OfflineFID plus their
# per-sample dicts
PER_IMAGE = {'PSNR': (24, 48), 'SSIM': (24, 48),
             'PerceptualDistance': (24, 48), 'TokenNLL': (100, 200),
             'CodebookUsage': (8, 16),
             'OfflineFID': (2 * 1280 * 4, 2 * 1280 * 4 + 1024)}


@pytest.mark.parametrize('name', sorted(PER_IMAGE))
def test_state_grows_by_statistics_not_images(name):
    """Same images count, 12 px vs 24 px images: the same state (no image
    is kept); 4 more images add the expected bytes per image."""
    low, high = PER_IMAGE[name]
    states = {}
    for image_size in (12, 24):
        metric = bench.build_metric(name)
        batches = bench.synthetic_batches(batch_size=4,
                                          image_size=image_size, groups=2,
                                          grid=2, codebook_size=16)
        rows = bench.measure(metric, [4, 8], batches)
        states[image_size] = [row['state_bytes'] for row in rows]
    assert states[12] == states[24]
    per_image = (states[12][1] - states[12][0]) / 4
    assert low <= per_image <= high, per_image


def test_codebook_usage_drops_distributed_padding_like_collect_results():
    """Two ranks split 7 samples as DefaultSampler does (rank 1 repeats
    sample 0 as padding); interleaving their results and keeping the first
    7, as mmengine's collect_results does, gives one process's metrics."""
    samples = next(bench.synthetic_batches(batch_size=7, image_size=4,
                                           groups=2, grid=3,
                                           codebook_size=8, seed=2))
    ranks = [CodebookUsage(), CodebookUsage()]
    for rank, order in zip(ranks, ([0, 2, 4, 6], [1, 3, 5, 0])):
        for index in order:
            rank.process(None, [samples[index]])
    # mmengine drops None entries, then cuts: the slots must survive that
    gathered = [entry for pair in zip(*(r.results for r in ranks))
                for entry in pair if entry is not None][:7]
    single = CodebookUsage()
    single.process(None, samples)
    expected = single.evaluate(7)
    assert ranks[0].compute_metrics(gathered) == pytest.approx(expected)
    padded = [entry for pair in zip(*(r.results for r in ranks))
              for entry in pair]
    assert ranks[0].compute_metrics(padded) != pytest.approx(expected)
