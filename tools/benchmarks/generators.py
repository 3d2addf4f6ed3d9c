"""Benchmark token generation with and without the KV caches.

Builds the generator of a config with random weights (the output layers,
zero at init, are drawn ``N(0, 1/D)`` so the logits have unit scale and the
sampled tokens depend on the hidden states), then times ``generate`` for one
batch of labels with ``use_cache=True`` and ``use_cache=False``: seconds per
batch (best of ``--repeats`` calls after ``--warmup`` untimed ones), images/s
and tokens/s (positions x sub-tokens of the batch's images per second; the
classifier-free-guidance copies are not counted). Every call draws with a
``torch.Generator`` seeded with ``--seed``, so the cached and the uncached
tokens can be compared: equal, or the fraction that differs.

One more cached call (``--no-breakdown`` skips it) measures where the time
goes: the backbone's forward, the head's ``sample`` less the sampling in it
(guidance, filtering, ``torch.multinomial``), the input embedding and the
rest of the loop, each timed around its calls with ``time.perf_counter``.

``--grid H W`` (repeatable) overrides the config's token grid and
``--codebook-sizes`` its vocabularies; with both set, the config's
``tokens`` source (a codes folder, a tokenizer config) is not read.

Example:
    python tools/benchmarks/generators.py configs/far/far_tiny_fmnist.py \\
        --grid 8 8 --grid 16 16 --codebook-sizes 256 256 --threads 1
"""
import argparse
import contextlib
import os
import time
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import torch
from mmengine.config import Config
from torch import nn

import fqzoo.models.generators.ar_generator as ar_generator
from fqzoo.apis import init_generator


def build(config: str, grid: Optional[Sequence[int]],
          codebook_sizes: Optional[Sequence[int]], seed: int) -> nn.Module:
    """The config's generator, random weights, non-zero output layers."""
    cfg = Config.fromfile(config)
    if grid is not None:
        cfg.model.grid_size = list(grid)
    if codebook_sizes is not None:
        cfg.model.codebook_sizes = list(codebook_sizes)
    if grid is not None and codebook_sizes is not None:
        cfg.model.tokens = None
    torch.manual_seed(seed)
    model = init_generator(cfg)
    for layer in model.head.outputs:
        nn.init.normal_(layer.weight, std=layer.in_features ** -0.5)
    return model


def run_generate(model: nn.Module, labels: torch.Tensor, cfg_scale: float,
                 use_cache: bool, seed: int) -> torch.Tensor:
    return model.generate(labels, cfg_scale=cfg_scale, use_cache=use_cache,
                          rng=torch.Generator().manual_seed(seed))


def best_time(fn: Callable[[], torch.Tensor], repeats: int,
              warmup: int) -> Dict[str, object]:
    """Minimum wall time of ``repeats`` calls after ``warmup`` calls, and
    the tokens of the last call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tokens = fn()
        times.append(time.perf_counter() - start)
    return dict(seconds=min(times), times=times, tokens=tokens)


class Timer:
    """Wall time summed over the calls of the functions it wraps."""

    def __init__(self) -> None:
        self.totals: Dict[str, float] = {}

    def wrap(self, name: str, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.totals[name] = self.totals.get(name, 0.0) \
                    + time.perf_counter() - start
        return timed


@contextlib.contextmanager
def timed_parts(model: nn.Module, timer: Timer) -> Iterator[None]:
    """Time the backbone, the head, the embedding and the sampling
    functions ``generate`` calls (the originals are restored on exit)."""
    patches = [(model.backbone, 'forward', 'backbone'),
               (model.head, 'sample', 'head'),
               (model.token_embed, 'forward', 'embed'),
               (ar_generator, 'draw', 'sampling'),
               (ar_generator, 'guide', 'sampling')]
    saved = []
    for owner, attr, name in patches:
        saved.append((owner, attr, owner.__dict__.get(attr)))
        setattr(owner, attr, timer.wrap(name, getattr(owner, attr)))
    try:
        yield
    finally:
        for owner, attr, original in saved:
            if original is None:
                delattr(owner, attr)  # back to the class's method
            else:
                setattr(owner, attr, original)


def breakdown(model: nn.Module, labels: torch.Tensor, cfg_scale: float,
              seed: int) -> Dict[str, float]:
    """Fractions of one cached ``generate`` call spent in each part."""
    timer = Timer()
    with timed_parts(model, timer):
        start = time.perf_counter()
        run_generate(model, labels, cfg_scale, True, seed)
        total = time.perf_counter() - start
    parts = dict(timer.totals)
    parts['head'] = parts.get('head', 0.0) - parts.get('sampling', 0.0)
    parts['other'] = total - sum(parts.values())
    return dict(seconds=total, **{k: v / total for k, v in parts.items()})


def bench(model: nn.Module, args: argparse.Namespace,
          modes: Sequence[bool]) -> dict:
    labels = torch.arange(args.batch) % model.num_classes
    positions = model.seq_len
    tokens = args.batch * positions * model.num_tokens
    row = dict(grid='x'.join(map(str, model.grid_size)),
               vocab=f'{model.num_tokens}x{max(model.codebook_sizes)}',
               params=sum(p.numel() for p in model.parameters()))
    for use_cache in modes:
        result = best_time(
            lambda c=use_cache: run_generate(model, labels, args.cfg_scale,
                                             c, args.seed),
            args.repeats, args.warmup)
        result['img_s'] = args.batch / result['seconds']
        result['tok_s'] = tokens / result['seconds']
        row['cached' if use_cache else 'uncached'] = result
        print(f"  {'cached' if use_cache else 'uncached'}: "
              + ', '.join(f'{t:.3f}' for t in result['times']) + ' s',
              flush=True)
    if 'cached' in row and 'uncached' in row:
        a, b = row['cached']['tokens'], row['uncached']['tokens']
        row['speedup'] = row['uncached']['seconds'] / row['cached']['seconds']
        row['differ'] = (a != b).float().mean().item()
    if args.breakdown:
        row['breakdown'] = breakdown(model, labels, args.cfg_scale,
                                     args.seed)
    return row


def fmt_rate(value: float) -> str:
    """Three significant digits, no exponent."""
    return f'{value:.0f}' if value >= 100 else f'{value:.3g}'


def timing_table(name: str, rows: List[dict], batch: int,
                 cfg_scale: float) -> str:
    rows_per_pass = batch * (2 if cfg_scale != 1 else 1)
    lines = [f'{name}, batch {batch} ({rows_per_pass} rows with guidance '
             f'{cfg_scale})', '',
             '| grid | G x V | params | cache | s / batch | images/s '
             '| tokens/s | speedup | same tokens |',
             '|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        for mode in ('cached', 'uncached'):
            if mode not in r:
                continue
            res = r[mode]
            speedup = same = ''
            if 'speedup' in r and mode == 'cached':
                speedup = f"{r['speedup']:.1f}x"
                same = 'yes' if r['differ'] == 0 else \
                    f"no ({100 * r['differ']:.2f}% differ)"
            lines.append(
                f"| {r['grid']} | {r['vocab']} | {r['params'] / 1e6:.2f}M "
                f"| {mode} | {res['seconds']:.3f} | {fmt_rate(res['img_s'])} "
                f"| {fmt_rate(res['tok_s'])} | {speedup} | {same} |")
    return '\n'.join(lines)


def breakdown_table(rows: List[dict]) -> str:
    parts = ['backbone', 'head', 'sampling', 'embed', 'other']
    lines = ['| grid | cached s | ' + ' | '.join(parts) + ' |',
             '|---|---|' + '---|' * len(parts)]
    for r in rows:
        if 'breakdown' not in r:
            continue
        b = r['breakdown']
        lines.append(f"| {r['grid']} | {b['seconds']:.3f} | "
                     + ' | '.join(f'{100 * b.get(p, 0.0):.1f}%'
                                  for p in parts) + ' |')
    return '\n'.join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='generator config')
    parser.add_argument('--grid', nargs=2, type=int, action='append',
                        metavar=('H', 'W'),
                        help='token grid (repeat for several; default: '
                             'the config\'s)')
    parser.add_argument('--codebook-sizes', nargs='+', type=int,
                        help='codes per sub-token (default: the config\'s)')
    parser.add_argument('--batch', type=int, default=8, help='labels')
    parser.add_argument('--cfg-scale', type=float, default=2.0,
                        help='guidance scale (not 1: the batch is doubled)')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed calls before the timed ones')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int,
                        help='torch intra-op threads (default: torch\'s)')
    parser.add_argument('--skip-uncached', action='store_true',
                        help='time the cached generation only')
    parser.add_argument('--no-breakdown', dest='breakdown',
                        action='store_false',
                        help='skip the timed-parts call')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    modes = [True] if args.skip_uncached else [True, False]
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'{os.cpu_count()} CPUs, load average '
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}, "
          f'best of {args.repeats} after {args.warmup} warm-up', flush=True)
    start = time.perf_counter()
    rows = []
    for grid in args.grid or [None]:
        model = build(args.config, grid, args.codebook_sizes, args.seed)
        print(f'grid {model.grid_size}, codebooks {model.codebook_sizes}',
              flush=True)
        rows.append(bench(model, args, modes))
        del model
    print('\n' + timing_table(args.config, rows, args.batch, args.cfg_scale))
    if args.breakdown:
        print('\nWhere the cached time goes\n')
        print(breakdown_table(rows))
    print(f'\nwall {time.perf_counter() - start:.0f} s, load average '
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == '__main__':
    main()
