"""Peak memory and step time of fqzoo's blocked IBQ against the released one.

One training step of the quantizer alone: forward, the quantization losses
(and the entropy loss, weight 0.05 as released), a dummy loss on the output,
backward to the encoder output and the codebook. ``N = 16 * 16 * batch``
tokens (a 16 x 16 latent per image), ``K = 2^s`` codes of ``embed_dim``
channels, float32, CPU.

fqzoo's ``IndexBackpropQuantizer`` computes the straight-through softmax a
``[tokens, codes]`` block at a time (``block_size`` entries); the released
``IndexPropagationQuantize`` (TencentARC/SEED-Voken,
``src/IBQ/modules/vqvae/quantize.py``, loaded from the checkout given by
``--seed-voken``; never imported by fqzoo) holds several ``[N, K]``
matrices. Both get the same codebook and input in the same run; the
released one is skipped where its estimated ``10 * N * K * 4`` bytes exceed
``--released-max-gib``.

Memory is the peak resident set size above its value just before the
measured step (``/proc/self/statm`` sampled every millisecond by a thread,
glibc's mmap threshold pinned at 128 KiB so freed buffers leave the RSS;
the helpers of ``tools/benchmarks/quantizers.py``). ``tracemalloc`` does
not see torch's allocations. A warm-up step runs first, so the codebook's
``.grad`` already exists; the peak still counts the ``[K, D]`` gradient
temporaries of each loss (a few times ``K * D * 4`` bytes, the same for
both), which the ``K x D MiB`` column states. Time is the best of
``--repeat`` steps after the warm-up.

Example:
    python tools/benchmarks/ibq_memory.py --seed-voken /tmp/SEED-Voken \\
        --batch 4 --embed-dims 256 --log2-sizes 14 16 17 18
"""
import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Callable, List, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from quantizers import measure  # noqa: E402

from fqzoo.models.quantizers import IndexBackpropQuantizer  # noqa: E402

ENTROPY_WEIGHT = 0.05


def load_released(root: Path):
    path = root / 'src/IBQ/modules/vqvae/quantize.py'
    spec = importlib.util.spec_from_file_location('released_ibq', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.IndexPropagationQuantize


def fqzoo_step(quantizer, z: torch.Tensor) -> Callable[[], None]:
    def step():
        quantizer.embedding.weight.grad.zero_()
        zg = z.detach().requires_grad_()
        out = quantizer(zg)
        (out.quantized.square().mean() + sum(out.losses.values())).backward()
    return step


def released_step(quantizer, z: torch.Tensor) -> Callable[[], None]:
    def step():
        quantizer.embedding.weight.grad.zero_()
        zg = z.detach().requires_grad_()
        quantized, (quant, _, _, entropy), _ = quantizer(zg)
        (quantized.square().mean() + quant
         + ENTROPY_WEIGHT * entropy).backward()
    return step


def bench(log2_size: int, dim: int, batch: int, repeat: int,
          block_size: int, released_cls: Optional[type],
          released_max_gib: float) -> List[dict]:
    size, tokens = 2 ** log2_size, 256 * batch
    torch.manual_seed(0)
    ours = IndexBackpropQuantizer(size, dim, entropy_weight=ENTROPY_WEIGHT,
                                  block_size=block_size).train()
    z = torch.randn(batch, dim, 16, 16)
    runs = [('fqzoo (blocked)', ours, fqzoo_step)]
    if released_cls is not None and \
            10 * tokens * size * 4 <= released_max_gib * 2 ** 30:
        theirs = released_cls(size, dim, beta=0.25, use_entropy_loss=True,
                              entropy_temperature=0.01).train()
        theirs.embedding.weight.data.copy_(ours.embedding.weight.data)
        runs.append(('released', theirs, released_step))
    rows = []
    for name, quantizer, make_step in runs:
        quantizer.embedding.weight.grad = torch.zeros_like(
            quantizer.embedding.weight)
        result = measure(make_step(quantizer, z), repeat)
        rows.append(dict(impl=name, size=size, dim=dim, tokens=tokens,
                         **result))
        print(f'{name:16s} K=2^{log2_size} D={dim} N={tokens}: '
              f'{result["seconds"]:.2f} s, {result["peak_mib"]:.0f} MiB',
              flush=True)
    return rows


def table(rows: List[dict]) -> str:
    lines = ['| implementation | K | D | N | K x D MiB | step s | '
             'peak extra MiB |', '|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f'| {r["impl"]} | 2^{r["size"].bit_length() - 1} | '
                     f'{r["dim"]} | {r["tokens"]} | '
                     f'{r["size"] * r["dim"] * 4 / 2 ** 20:.1f} | '
                     f'{r["seconds"]:.2f} | {r["peak_mib"]:.0f} |')
    return '\n'.join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seed-voken', type=Path,
                        help='TencentARC/SEED-Voken checkout (optional)')
    parser.add_argument('--log2-sizes', type=int, nargs='+',
                        default=[14, 16, 17, 18])
    parser.add_argument('--embed-dims', type=int, nargs='+', default=[256])
    parser.add_argument('--batch', type=int, default=4,
                        help='images of 16 x 16 tokens. Defaults to 4 (the '
                        'released per-GPU batch)')
    parser.add_argument('--repeat', type=int, default=1)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--block-size', type=int, default=2 ** 20)
    parser.add_argument('--released-max-gib', type=float, default=6.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    released = load_released(args.seed_voken) if args.seed_voken else None
    rows = [row for dim in args.embed_dims for s in args.log2_sizes
            for row in bench(s, dim, args.batch, args.repeat,
                             args.block_size, released,
                             args.released_max_gib)]
    print(table(rows))


if __name__ == '__main__':
    main()
