"""Every registered metric gathered across two gloo processes.

The processes split an evaluation set of 7 samples as the runner's
``DefaultSampler`` does (rank 0: 0, 2, 4, 6; rank 1: 1, 3, 5 and sample 0
again as padding), process batches of 2 through mmengine's ``Evaluator`` and
call ``evaluate(7)``, which collects the results on rank 0
(``collect_results``), computes there and broadcasts. Both ranks must get
what one process gets from all 7 samples in batches of 3.

FID needs torch-fidelity's Inception weights, absent offline: it runs here
with a small stand-in extractor (fixed random projections) in Inception's
place. What gathering can break (which samples reach ``compute_metrics``, in
which order) does not depend on the network; ``tests/test_evaluation/
test_metrics.py`` runs the real Inception code path on random weights.
"""
import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from mmengine.dataset import DefaultSampler
from mmengine.evaluator import Evaluator

import fqzoo.evaluation  # noqa: F401  (registers the metrics)
from fqzoo.evaluation.metrics import fid
from fqzoo.registry import METRICS

WORLD_SIZE = 2
NUM_SAMPLES = 7
DIST_BATCH, SINGLE_BATCH = 2, 3
CODEBOOK_SIZE = 16

# One config per metric registered by fqzoo. Each sample carries every
# field some metric reads.
CASES = {
    'CodebookUsage': dict(type='CodebookUsage'),
    'PSNR': dict(type='PSNR'),
    'SSIM': dict(type='SSIM'),
    'PerceptualDistance': dict(type='PerceptualDistance'),
    'OfflineFID': dict(type='OfflineFID'),
    # Two IS splits: the score depends on which samples share a split, so
    # on the order the gathered results come back in.
    'FID': dict(type='FID', is_splits=2),
    'TokenNLL': dict(type='TokenNLL'),
    'FashionMNISTReconFidelity': dict(type='FashionMNISTReconFidelity'),
}


class StandInInception(torch.nn.Module):
    """In Inception's place for FID: the features FID reads (``'2048'``,
    here 6-d, and 10 ``'logits_unbiased'``, scaled so that IS is well above
    1) as fixed random projections of the 8x8-pooled uint8 images."""

    def __init__(self) -> None:
        super().__init__()
        rng = torch.Generator().manual_seed(0)
        self.register_buffer('pool', torch.randn(3 * 64, 6, generator=rng))
        self.register_buffer('logits',
                             torch.randn(3 * 64, 10, generator=rng))

    @staticmethod
    def get_requested_features_list() -> list:
        return ['2048', 'logits_unbiased']

    def forward(self, images: torch.Tensor) -> tuple:
        x = F.adaptive_avg_pool2d(images.float() / 255 - 0.5, 8).flatten(1)
        return x @ self.pool, 10 * x @ self.logits


def make_samples() -> list:
    """The evaluation set: what a tokenizer's (or generator's) predict step
    gives per sample, the same in every process."""
    rng = torch.Generator().manual_seed(0)
    inputs = torch.rand(NUM_SAMPLES, 3, 32, 32, generator=rng) * 2 - 1
    noise = torch.randn(inputs.shape, generator=rng)
    recon = (inputs + 0.3 * noise).clamp(-1, 1)
    indices = torch.randint(0, CODEBOOK_SIZE, (NUM_SAMPLES, 2, 2, 2),
                            generator=rng)
    nll = torch.rand(NUM_SAMPLES, 2, generator=rng) * 5
    return [dict(inputs=x, recon=y, indices=i, codebook_size=CODEBOOK_SIZE,
                 nll=n.tolist())
            for x, y, i, n in zip(inputs, recon, indices, nll)]


def fqzoo_metrics() -> set:
    return {name for name, cls in METRICS.module_dict.items()
            if cls.__module__.startswith('fqzoo.')}


def evaluate(name: str, order: list, batch_size: int) -> dict:
    """Metric ``name`` over the samples in ``order``, in batches, through an
    ``Evaluator``, then ``evaluate(NUM_SAMPLES)``."""
    samples = make_samples()
    evaluator = Evaluator(METRICS.build(CASES[name]))
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        evaluator.process([samples[i] for i in batch])
    return evaluator.evaluate(NUM_SAMPLES)


def worker(rank: int, init_file: str, out_dir: str) -> None:
    """One of the ``WORLD_SIZE`` processes: every metric on its share."""
    torch.set_num_threads(1)
    os.chdir(out_dir)  # collect_results writes .dist_test/ in the cwd
    dist.init_process_group('gloo', init_method=f'file://{init_file}',
                            rank=rank, world_size=WORLD_SIZE,
                            timeout=timedelta(seconds=60))
    try:
        order = list(DefaultSampler(list(range(NUM_SAMPLES)), shuffle=False))
        results = {name: evaluate(name, order, DIST_BATCH) for name in CASES}
        (Path(out_dir) / f'rank{rank}.json').write_text(json.dumps(
            dict(order=order, results=results)))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope='module')
def runs(tmp_path_factory) -> dict:
    """Every metric by 2 forked processes (``rank0``, ``rank1``: their
    sample ``order`` and ``results``) and by this process alone
    (``single``)."""
    root = tmp_path_factory.mktemp('metrics_distributed')
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fid, '_build_inception',
                      lambda checkpoint: StandInInception())
        mp.start_processes(worker, args=(str(root / 'pg'), str(root)),
                           nprocs=WORLD_SIZE, join=True,
                           start_method='fork')
        runs = {f'rank{r}': json.loads((root / f'rank{r}.json').read_text())
                for r in range(WORLD_SIZE)}
        runs['single'] = {name: evaluate(name, list(range(NUM_SAMPLES)),
                                         SINGLE_BATCH) for name in CASES}
    return runs


def test_every_registered_metric_has_a_case():
    assert set(CASES) == fqzoo_metrics()


@pytest.mark.slow
def test_ranks_split_the_set_unevenly_with_padding(runs):
    assert runs['rank0']['order'] == [0, 2, 4, 6]
    assert runs['rank1']['order'] == [1, 3, 5, 0]


@pytest.mark.slow
@pytest.mark.parametrize('name', list(CASES))
def test_gathered_metric_equals_one_process(runs, name):
    zero = runs['rank0']['results'][name]
    assert zero == runs['rank1']['results'][name]  # broadcast from rank 0
    single = runs['single'][name]
    assert zero.keys() == single.keys()
    assert zero == pytest.approx(single, rel=1e-6, abs=1e-9)
