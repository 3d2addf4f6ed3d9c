"""Benchmark what the evaluation metrics keep in memory over a long run.

Feeds synthetic batches to each metric's ``process``, as MMEngine's
``ValLoop`` does: images in [-1, 1] (``inputs``), reconstructions (the
images plus noise, ``recon``), random code indices ``[G, h, w]``
(``indices``, ``codebook_size``) and per-sample token NLLs (``nll``). After
each count of ``--num-images`` images it records:

- ``state_bytes``: what the metric holds in ``metric.results`` (tensor
  storages, each counted once, plus the Python objects that hold them);
- ``rss_mb``: the process's resident memory now (``/proc/self/statm``) and
  ``peak_rss_mb`` (``resource.getrusage``, the peak so far);

then ``metric.evaluate`` computes the result and frees the state. Each
metric runs in its own process, so the memory figures are its own. Metrics
that run a network (``PerceptualDistance``, ``OfflineFID``, ``FID``, which
resize to 224 px) use ``--network-num-images``. ``FID`` needs
``--inception-checkpoint``.

Example:
    python tools/benchmarks/eval_memory.py --num-images 1024 4096 16384 \\
        --network-num-images 64 256 --out eval_memory.json
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Dict, Iterator, List, Optional, Sequence

import torch

NETWORK_METRICS = ('PerceptualDistance', 'OfflineFID', 'FID')
DEFAULT_METRICS = ('PSNR', 'SSIM', 'CodebookUsage', 'TokenNLL',
                   'PerceptualDistance', 'OfflineFID')


def state_bytes(obj, _seen: Optional[set] = None) -> int:
    """Bytes held by ``obj`` and what it contains: containers and Python
    objects by ``sys.getsizeof``, tensors by the bytes of their storage
    (a storage shared by several tensors, such as the views of one batch,
    counts once)."""
    seen = set() if _seen is None else _seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if torch.is_tensor(obj):
        storage = obj.untyped_storage()
        key = ('storage', storage.data_ptr())
        if key not in seen:
            seen.add(key)
            size += storage.nbytes()
    elif isinstance(obj, dict):
        size += sum(state_bytes(k, seen) + state_bytes(v, seen)
                    for k, v in obj.items())
    elif isinstance(obj, (list, tuple, set)):
        size += sum(state_bytes(item, seen) for item in obj)
    return size


def rss_mb() -> float:
    """Resident set size of this process now, in MiB."""
    with open('/proc/self/statm') as file:
        pages = int(file.read().split()[1])
    return pages * os.sysconf('SC_PAGE_SIZE') / 2**20


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_batches(batch_size: int, image_size: int, groups: int,
                      grid: int, codebook_size: int,
                      seed: int = 0) -> Iterator[List[dict]]:
    """Endless batches of val-step outputs (one dict per sample)."""
    rng = torch.Generator().manual_seed(seed)
    while True:
        inputs = torch.rand(batch_size, 3, image_size, image_size,
                            generator=rng) * 2 - 1
        recon = (inputs + 0.1 * torch.randn(inputs.shape, generator=rng)
                 ).clamp(-1, 1)
        indices = torch.randint(codebook_size,
                                (batch_size, groups, grid, grid),
                                generator=rng)
        nll = torch.rand(batch_size, groups, generator=rng) * 5
        yield [dict(inputs=inputs[i], recon=recon[i], indices=indices[i],
                    codebook_size=codebook_size, nll=nll[i])
               for i in range(batch_size)]


def build_metric(name: str, inception_checkpoint: Optional[str] = None):
    """The metric ``name`` from fqzoo's registry."""
    import fqzoo.evaluation  # noqa: F401  (registers the metrics)
    from fqzoo.registry import METRICS
    cfg = dict(type=name)
    if name == 'FID':
        cfg['inception_checkpoint'] = inception_checkpoint
    return METRICS.build(cfg)


@torch.no_grad()
def measure(metric, counts: Sequence[int], batches: Iterator[List[dict]]
            ) -> List[Dict[str, float]]:
    """Process images until each of ``counts`` (ascending) is reached and
    record the metric's state and the process memory there; then evaluate.

    Returns:
        list[dict]: one row per count (``images``, ``state_bytes``,
        ``state_bytes_per_image``, ``rss_mb``, ``peak_rss_mb``,
        ``seconds``), the last with the metric's results (``result``).
    """
    rows, seen, start = [], 0, time.perf_counter()
    for target in sorted(counts):
        while seen < target:
            batch = next(batches)[:target - seen]
            metric.process(None, batch)
            seen += len(batch)
        state = state_bytes(metric.results)
        rows.append(dict(images=seen, state_bytes=state,
                         state_bytes_per_image=state / seen,
                         rss_mb=rss_mb(), peak_rss_mb=peak_rss_mb(),
                         seconds=time.perf_counter() - start))
    rows[-1]['result'] = metric.evaluate(seen)
    return rows


def run_one(args: argparse.Namespace) -> None:
    """Measure the metric ``args.one`` and print its rows as JSON."""
    torch.set_num_threads(args.threads)
    counts = (args.network_num_images if args.one in NETWORK_METRICS
              else args.num_images)
    batches = synthetic_batches(args.batch_size, args.image_size,
                                args.groups, args.grid, args.codebook_size)
    metric = build_metric(args.one, args.inception_checkpoint)
    baseline = rss_mb()
    rows = measure(metric, counts, batches)
    for row in rows:
        row.update(metric=args.one, baseline_rss_mb=baseline)
    print(json.dumps(rows))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--metrics', nargs='+', default=list(DEFAULT_METRICS))
    parser.add_argument('--num-images', nargs='+', type=int,
                        default=[1024, 4096, 16384])
    parser.add_argument('--network-num-images', nargs='+', type=int,
                        default=[64, 256])
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--image-size', type=int, default=64)
    parser.add_argument('--groups', type=int, default=2,
                        help='sub-codebooks G')
    parser.add_argument('--grid', type=int, default=16,
                        help='token grid side h = w')
    parser.add_argument('--codebook-size', type=int, default=16384)
    parser.add_argument('--inception-checkpoint')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--out', help='write all rows to this JSON file')
    parser.add_argument('--one', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    if args.one:
        run_one(args)
        return
    forwarded = list(argv if argv is not None else sys.argv[1:])
    rows = []
    for name in args.metrics:
        proc = subprocess.run(
            [sys.executable, __file__, *forwarded, '--one', name],
            capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f'{name}: failed\n{proc.stderr[-2000:]}', file=sys.stderr)
            continue
        rows += json.loads(proc.stdout.strip().splitlines()[-1])
    print(f'{"metric":<20}{"images":>8}{"state KiB":>12}{"B/image":>10}'
          f'{"RSS MiB":>10}{"peak MiB":>10}{"s":>8}')
    for row in rows:
        print(f'{row["metric"]:<20}{row["images"]:>8}'
              f'{row["state_bytes"] / 1024:>12.1f}'
              f'{row["state_bytes_per_image"]:>10.1f}{row["rss_mb"]:>10.1f}'
              f'{row["peak_rss_mb"]:>10.1f}{row["seconds"]:>8.1f}')
    if args.out:
        with open(args.out, 'w') as file:
            json.dump(rows, file, indent=2)


if __name__ == '__main__':
    main()
