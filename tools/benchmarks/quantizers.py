"""Benchmark every registered quantizer over codebook sizes.

For each quantizer and codebook size ``2^s`` it prints tokens/s of the
forward pass (eval mode, no grad) and of forward + backward (train mode,
auxiliary losses plus a dummy loss on ``quantized``), and the peak extra
memory of each: the resident set size (``/proc/self/statm``, sampled every
millisecond by a thread) above its value just before one extra call. For
that call glibc's mmap threshold is pinned at 128 KiB, so freed buffers leave
the RSS, and free heap memory is trimmed first, so the call's own peak is
seen (RSS counts whole pages; buffers under 128 KiB that the heap reuses
are not seen). Timed calls run without
the sampler, with the threshold at glibc's 32 MiB maximum so blocks are
reused as in a normal process.

For ``VectorQuantizer`` it also times the nearest-code search alone against
the common full-matrix search (the ``[N, K]`` distance matrix of
taming-transformers / LlamaGen, ``||z||^2 + ||e||^2 - 2 z e^T`` then
``argmin``) and against ``torch.cdist(z, e).argmin(1)``, on the same data in
the same run; the naive searches are skipped when their ``[N, K]``
temporaries would exceed ``--naive-max-gib``.

LFQ / BSQ use ``D = s`` bits; FSQ uses the FSQ paper's levels for ``2^10``
... ``2^16`` and ``8^6 = 2^18``; FQ splits the latent over two ``2^s``
sub-codebooks; RVQ has 4 levels of ``2^s`` codes; SimVQ and IBQ use
``D = 8`` like VQ (tools/benchmarks/ibq_memory.py compares IBQ with the
released module).

Example:
    python tools/benchmarks/quantizers.py --tokens 16384 --log2-sizes 10 14
"""
import argparse
import ctypes
import os
import threading
import time
from typing import Callable, Dict, List, Optional

import torch

from fqzoo.models.quantizers.search import nearest_code, nearest_code_naive
from fqzoo.registry import QUANTIZERS

FSQ_LEVELS = {10: (8, 5, 5, 5), 12: (7, 5, 5, 5, 5), 14: (8, 8, 8, 6, 5),
              16: (8, 8, 8, 5, 5, 5), 18: (8, 8, 8, 8, 8, 8)}


def vq_cfg(log2_size: int, **kwargs) -> dict:
    return dict(type='VectorQuantizer', codebook_size=2 ** log2_size,
                embed_dim=8, **kwargs)


def fsq_cfg(log2_size: int) -> Optional[dict]:
    levels = FSQ_LEVELS.get(log2_size)
    return dict(type='FSQ', levels=levels) if levels else None


# name -> config with about 2^s codes per codebook (None: no such size)
SIZED: Dict[str, Callable[[int], Optional[dict]]] = {
    'VectorQuantizer': vq_cfg,
    'FactorizedQuantizer': lambda s: dict(
        type='FactorizedQuantizer', num_codebooks=2, quantizer=vq_cfg(s)),
    'ResidualVQ': lambda s: dict(
        type='ResidualVQ', depth=4, quantizer=vq_cfg(s, l2_norm=False)),
    'LookupFreeQuantizer': lambda s: dict(
        type='LookupFreeQuantizer', embed_dim=s,
        entropy_groups=2 if s % 2 == 0 else 1),
    'BSQ': lambda s: dict(type='BSQ', embed_dim=s),
    'FSQ': fsq_cfg,
    'SimVQ': lambda s: dict(type='SimVQ', codebook_size=2 ** s, embed_dim=8),
    'IndexBackpropQuantizer': lambda s: dict(
        type='IndexBackpropQuantizer', codebook_size=2 ** s, embed_dim=8),
}


def configs(name: str, log2_sizes: List[int]) -> List[dict]:
    """Sized configs of ``name``; its defaults when it has no sizing."""
    if name not in SIZED:
        return [dict(type=name)]
    return [cfg for cfg in map(SIZED[name], log2_sizes) if cfg is not None]


class PeakRSS:
    """Peak resident set size above the value at ``__enter__``, sampled
    every ``period`` seconds by a background thread."""

    def __init__(self, period: float = 1e-3) -> None:
        self.period = period
        self.page = os.sysconf('SC_PAGE_SIZE')
        self.peak = 0

    def rss(self) -> int:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * self.page

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss() - self.base)
            time.sleep(self.period)

    def __enter__(self) -> 'PeakRSS':
        self.base = self.rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def best_time(fn: Callable[[], object], repeat: int) -> float:
    """Minimum wall time of ``repeat`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


LIBC = ctypes.CDLL('libc.so.6')


def set_mmap_threshold(nbytes: int) -> None:
    """Fix glibc's mmap threshold (which also stops its dynamic growth):
    buffers above it are returned to the OS when freed."""
    m_mmap_threshold = -3
    LIBC.mallopt(m_mmap_threshold, nbytes)


def measure(fn: Callable[[], object], repeat: int) -> Dict[str, float]:
    """Best time of ``repeat`` calls, then the peak RSS of one more."""
    set_mmap_threshold(32 * 2 ** 20)
    seconds = best_time(fn, repeat)
    set_mmap_threshold(128 * 1024)
    LIBC.malloc_trim(0)  # give back what the timed calls left in the heap
    with PeakRSS() as mem:
        fn()
    return dict(seconds=seconds, peak_mib=mem.peak / 2 ** 20)


def forward_fn(quantizer, z: torch.Tensor) -> Callable[[], object]:
    def run():
        with torch.no_grad():
            return quantizer(z)
    return run


def train_fn(quantizer, z: torch.Tensor) -> Callable[[], object]:
    def run():
        zg = z.detach().requires_grad_()
        out = quantizer(zg)
        loss = out.quantized.square().mean() + sum(out.losses.values())
        loss.backward()
    return run


def bench_quantizer(cfg: dict, tokens: int, repeat: int) -> dict:
    torch.manual_seed(0)
    quantizer = QUANTIZERS.build(cfg)
    side = int(tokens ** 0.5)
    z = torch.randn(tokens // (side * side), quantizer.in_channels, side,
                    side)
    n = z.shape[0] * side * side
    fwd = measure(forward_fn(quantizer.eval(), z), repeat)
    train = measure(train_fn(quantizer.train(), z), repeat)
    return dict(size=quantizer.codebook_size, tokens=n,
                fwd_tps=n / fwd['seconds'], fwd_mib=fwd['peak_mib'],
                train_tps=n / train['seconds'], train_mib=train['peak_mib'])


def bench_search(log2_size: int, tokens: int, repeat: int,
                 naive_max_gib: float) -> dict:
    """fqzoo's search (plain or blocked by size), its blocked path forced,
    and the two full-matrix searches, on the same data."""
    torch.manual_seed(0)
    normalize = torch.nn.functional.normalize
    z = normalize(torch.randn(tokens, 8), dim=-1)
    codebook = normalize(torch.randn(2 ** log2_size, 8), dim=-1)
    row = dict(size=2 ** log2_size, tokens=tokens)
    row['fast'] = measure(lambda: nearest_code(z, codebook), repeat)
    row['blocked'] = measure(lambda: nearest_code(z, codebook, plain_max=0),
                             repeat)
    # the expanded form keeps about three [N, K] float32 temporaries
    if 3 * 4 * tokens * 2 ** log2_size <= naive_max_gib * 2 ** 30:
        row['naive'] = measure(lambda: nearest_code_naive(z, codebook),
                               repeat)
        row['cdist'] = measure(
            lambda: torch.cdist(z, codebook).argmin(1), repeat)
        assert torch.equal(nearest_code(z, codebook),
                           nearest_code_naive(z, codebook))
    return row


def fmt_rate(tps: float) -> str:
    return f'{tps / 1e6:.2f}M' if tps >= 1e6 else f'{tps / 1e3:.0f}k'


def quantizer_table(rows: List[dict]) -> str:
    lines = ['| quantizer | config | codes | fwd tok/s | fwd peak MiB '
             '| fwd+bwd tok/s | fwd+bwd peak MiB |',
             '|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['config']} | {r['size']} "
            f"| {fmt_rate(r['fwd_tps'])} | {r['fwd_mib']:.0f} "
            f"| {fmt_rate(r['train_tps'])} | {r['train_mib']:.0f} |")
    return '\n'.join(lines)


def search_table(rows: List[dict]) -> str:
    lines = ['| N | K | nearest_code ms | peak MiB | blocked forced ms '
             '| naive ms | naive peak MiB '
             '| cdist ms | speed-up vs naive | speed-up vs cdist |',
             '|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        fast = r['fast']
        cells = [str(r['tokens']), str(r['size']),
                 f"{fast['seconds'] * 1e3:.1f}", f"{fast['peak_mib']:.0f}",
                 f"{r['blocked']['seconds'] * 1e3:.1f}"]
        if 'naive' in r:
            naive, cdist = r['naive'], r['cdist']
            cells += [f"{naive['seconds'] * 1e3:.1f}",
                      f"{naive['peak_mib']:.0f}",
                      f"{cdist['seconds'] * 1e3:.1f}",
                      f"{naive['seconds'] / fast['seconds']:.1f}x",
                      f"{cdist['seconds'] / fast['seconds']:.1f}x"]
        else:
            cells += ['skipped (memory)'] * 5
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def describe(cfg: dict) -> str:
    return ', '.join(f'{k}={v}' for k, v in cfg.items()
                     if k != 'type' and not isinstance(v, dict))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quantizers', nargs='+',
                        help='registered names (default: all)')
    parser.add_argument('--log2-sizes', nargs='+', type=int,
                        default=[10, 12, 14, 16, 18])
    parser.add_argument('--tokens', type=int, default=16384,
                        help='tokens per batch (a square map per sample)')
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--naive-max-gib', type=float, default=4.0,
                        help='skip naive search above this much memory')
    parser.add_argument('--threads', type=int,
                        help='torch intra-op threads (default: torch\'s)')
    parser.add_argument('--skip-quantizers', action='store_true')
    parser.add_argument('--skip-search', action='store_true')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    QUANTIZERS.import_from_location()
    names = args.quantizers or sorted(QUANTIZERS.module_dict)
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'{args.tokens} tokens, best of {args.repeat}')
    rows = []
    for name in [] if args.skip_quantizers else names:
        for cfg in configs(name, args.log2_sizes):
            row = bench_quantizer(cfg, args.tokens, args.repeat)
            rows.append(dict(row, name=name, config=describe(cfg)))
            print(quantizer_table(rows[-1:]).splitlines()[-1], flush=True)
    if rows:
        print('\n' + quantizer_table(rows))
    if not args.skip_search:
        search = [bench_search(s, args.tokens, args.repeat,
                               args.naive_max_gib)
                  for s in args.log2_sizes]
        print('\nNearest-code search, D=8, eval, no grad\n')
        print(search_table(search))


if __name__ == '__main__':
    main()
