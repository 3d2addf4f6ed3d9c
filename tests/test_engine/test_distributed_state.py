"""Codebook state under ``torch.distributed``: two gloo processes that see
different data end with identical codebooks, equal to one process that saw
the union of their data.

What is synchronised (fqzoo/models/quantizers/vq.py, base.py): code counts
(all-reduced, so usage windows, dead masks and EMA counts agree), EMA sums
(all-reduced), k-means initialisation and dead-code restart (drawn from the
rows of every process, rank 0's draw broadcast). Restarts run either inside
the forward (``auto_restart``) or from :class:`CodebookHealthHook`.
"""
import itertools
import logging
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.logging import MessageHub

from fqzoo.engine.hooks.codebook_health import CodebookHealthHook
from fqzoo.registry import QUANTIZERS

WORLD_SIZE = 2
STEPS = 6
# Rank 0 holds images 0-1 of each step's batch of 3, rank 1 holds image 2:
# unequal shares, and (through OFFSETS) data from different clusters.
SHARES = [slice(0, 2), slice(2, 3)]
OFFSETS = [3.0, 3.0, -3.0]

_HUBS = itertools.count()

SCENARIOS = {
    # EMA codes, k-means init, dead codes re-seeded inside the forward.
    'vq_ema_auto_restart': dict(
        quantizer=dict(type='VectorQuantizer', codebook_size=16, embed_dim=4,
                       l2_norm=False, ema=True, kmeans_init=True,
                       kmeans_iters=5, dead_code_steps=2, auto_restart=True),
        hook=None),
    # Two l2-normalised EMA sub-codebooks, restarts from the health hook.
    'fq_ema_hook_restart': dict(
        quantizer=dict(type='FactorizedQuantizer', num_codebooks=2,
                       quantizer=dict(type='VectorQuantizer',
                                      codebook_size=16, embed_dim=4,
                                      l2_norm=True, ema=True,
                                      kmeans_init=True, kmeans_iters=5,
                                      dead_code_steps=2)),
        hook=dict(interval=2, restart=True)),
}


def step_batch(step: int, channels: int) -> torch.Tensor:
    """The whole batch of one step, ``[3, channels, 2, 2]``; image ``i`` is
    shifted by ``OFFSETS[i]``."""
    rng = torch.Generator().manual_seed(1000 + step)
    noise = torch.randn(3, channels, 2, 2, generator=rng)
    return noise + torch.tensor(OFFSETS).view(3, 1, 1, 1)


def train(name: str, share: slice = slice(None), seed: int = 0) -> dict:
    """Run one scenario on this process's ``share`` of every batch.

    The quantizer is built under seed 0 (as DDP starts every rank from the
    same weights); training draws from ``seed``.

    Returns:
        dict: the quantizer's ``state`` dict, its dead codes before each
        forward (``dead``: ``auto_restart`` re-seeds them there), the codes
        re-seeded by the hook (``restarted``) and the hook's logged
        ``scalars``.
    """
    scenario = SCENARIOS[name]
    torch.manual_seed(0)
    quantizer = QUANTIZERS.build(scenario['quantizer']).train()
    torch.manual_seed(seed)
    model = SimpleNamespace(quantizer=quantizer)
    hub = MessageHub.get_instance(f'distributed_state_{next(_HUBS)}')
    runner = SimpleNamespace(model=model, message_hub=hub, iter=0,
                             logger=logging.getLogger('distributed_state'))
    hook = CodebookHealthHook(**scenario['hook']) if scenario['hook'] else None
    dead, restarted, scalars = [], [], []
    for step in range(STEPS):
        dead.append(sum(int(stats['dead_codes'])
                        for stats in quantizer.codebook_stats()))
        quantizer(step_batch(step, quantizer.in_channels)[share])
        if hook is not None:
            runner.iter = step
            hook.after_train_iter(runner, step)
            if hook.every_n_train_iters(runner, hook.interval):
                restarted.append(int(hub.get_scalar(
                    'train/codebook_restarted').current()))
                scalars.append({key: float(buffer.current()) for key, buffer in
                                hub.log_scalars.items()})
    state = {key: value.clone() for key, value in
             quantizer.state_dict().items()}
    return dict(state=state, dead=dead, restarted=restarted,
                scalars=scalars)


def worker(rank: int, init_file: str, out_dir: str) -> None:
    """One of the ``WORLD_SIZE`` processes: every scenario on its share,
    with its own random stream (as ``diff_rank_seed`` gives), so only a
    broadcast makes the ranks' random draws agree. A collective one rank
    skips (ranks disagreeing on dead codes) times out instead of hanging."""
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{init_file}',
                            rank=rank, world_size=WORLD_SIZE,
                            timeout=timedelta(seconds=30))
    try:
        results = {name: train(name, SHARES[rank], seed=rank)
                   for name in SCENARIOS}
        torch.save(results, Path(out_dir) / f'rank{rank}.pth')
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope='module')
def runs(tmp_path_factory) -> dict:
    """Every scenario run by 2 processes (``rank0``, ``rank1``) and by this
    process alone on whole batches (``single``).

    The processes are forked: spawning re-imports torch and fqzoo in each
    (a minute on a loaded 2-core machine instead of seconds)."""
    root = tmp_path_factory.mktemp('distributed_state')
    mp.start_processes(worker, args=(str(root / 'pg'), str(root)),
                       nprocs=WORLD_SIZE, join=True, start_method='fork')
    runs = {f'rank{r}': torch.load(root / f'rank{r}.pth', weights_only=True)
            for r in range(WORLD_SIZE)}
    runs['single'] = {name: train(name) for name in SCENARIOS}
    return runs


def test_scenarios_exercise_every_synchronised_path():
    """Codes must move and dead codes must be re-seeded in both scenarios,
    or the comparisons below prove little."""
    auto = train('vq_ema_auto_restart')
    assert sum(auto['dead'][1:]) > 0  # re-seeded by the next forward
    hooked = train('fq_ema_hook_restart')
    assert sum(hooked['restarted']) > 0
    for name, run in (('vq_ema_auto_restart', auto),
                      ('fq_ema_hook_restart', hooked)):
        torch.manual_seed(0)
        fresh = QUANTIZERS.build(SCENARIOS[name]['quantizer']).state_dict()
        moved = [key for key, value in run['state'].items()
                 if key.endswith('embedding.weight')
                 and not torch.allclose(value, fresh[key])]
        assert len(moved) == (1 if name.startswith('vq') else 2)


@pytest.mark.slow
@pytest.mark.parametrize('name', list(SCENARIOS))
def test_ranks_agree_with_each_other_and_with_one_process(runs, name):
    zero, one, single = (runs[key][name]
                         for key in ('rank0', 'rank1', 'single'))
    assert zero['state'].keys() == one['state'].keys() == \
        single['state'].keys()
    for key, value in zero['state'].items():
        assert torch.equal(value, one['state'][key]), key
        if value.is_floating_point():
            torch.testing.assert_close(value, single['state'][key],
                                       rtol=1e-5, atol=1e-6, msg=key)
        else:
            assert torch.equal(value, single['state'][key]), key
    for key in ('dead', 'restarted'):
        assert zero[key] == one[key] == single[key], key
    assert zero['scalars'] == one['scalars']
    for got, want in zip(zero['scalars'], single['scalars']):
        assert got == pytest.approx(want, rel=1e-6)
