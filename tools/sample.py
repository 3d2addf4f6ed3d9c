"""Sample images from a token generator and its tokenizer, by fqzoo's
protocol (class-balanced, one seed per sample) or the released one
(``--protocol released``: LlamaGen's and FAR's sample scripts, random
labels, same tokens as their code for the same seed;
:mod:`fqzoo.generation.released`).

Writes to ``--out``: ``shard_*.npz`` (tokens, uint8 images, labels, seeds),
then ``samples.npz`` (``arr_0``: uint8 ``[N, H, W, 3]`` as the ADM
evaluator reads it, ``arr_1``: labels), ``grid_class_<c>.png``,
``grid.png`` (one row per class) and ``sampling.json`` (arguments, hashes,
counts, timings, the evaluation command). Sample ``i`` has class
``classes[i % C]`` and seed ``--seed + i``. Started again with the same
``--out``, complete shards are skipped; a folder made with other settings
is refused. With ``torchrun ... --launcher pytorch`` each process draws its
share of the shards and rank 0 assembles the outputs.

Examples:
    python tools/sample.py GEN_CFG GEN_CKPT --tokenizer TOK_CFG TOK_CKPT \\
        --num 1000 --cfg-scale 2.0 --out work_dirs/samples/far_fmnist
    torchrun --nproc_per_node 8 tools/sample.py GEN_CFG GEN_CKPT \\
        --tokenizer TOK_CFG TOK_CKPT --num-samples 50000 --cfg-scale 2.0 \\
        --batch-size 64 --launcher pytorch --out samples/far_b
    # as the FAR release sampled FAR-B for its paper number (8 processes)
    python tools/sample.py GEN_CFG GEN_CKPT --tokenizer TOK_CFG TOK_CKPT \\
        --protocol released --streams 8 --batch-size 32 --num 50000 \\
        --cfg-scale 2.0 --out samples/far_b_released
"""
import argparse
import shlex
from pathlib import Path

from fqzoo.apis import init_generator, init_tokenizer
from fqzoo.errors import exit_on_input_error
from fqzoo.generation.provenance import describe_model
from fqzoo.generation.released import run_released_sampling
from fqzoo.generation.sampler import run_sampling
from fqzoo.utils.config import load_config
from fqzoo.utils.distributed import close_processes, init_processes


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Sampling into a resumable folder, by fqzoo\'s '
        'protocol or the released one')
    parser.add_argument('config', help='generator config file')
    parser.add_argument('checkpoint', help='generator checkpoint')
    parser.add_argument('--tokenizer', nargs=2, required=True,
                        metavar=('CONFIG', 'CHECKPOINT'),
                        help='tokenizer config and checkpoint')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--num', '--num-samples', dest='num', type=int,
                        required=True,
                        help='samples (fqzoo protocol: a multiple of the '
                        'number of classes; under torchrun write '
                        '--num-samples: torchrun takes --num for its own '
                        '--numa-binding)')
    parser.add_argument('--protocol', default='fqzoo',
                        choices=['fqzoo', 'released'],
                        help='fqzoo: balanced classes, one seed per sample, '
                        'filter then temperature; released: LlamaGen\'s and '
                        'FAR\'s sample scripts (random labels, one random '
                        'stream per release process, temperature then '
                        'filter, guidance only above 1), docs/generators.md')
    parser.add_argument('--classes', type=int, nargs='+',
                        help='classes to sample (default: all; fqzoo '
                        'protocol only)')
    parser.add_argument('--cfg-scale', type=float, nargs='+', default=[1.0],
                        help='guidance scale, one or one per sub-token '
                        '(1 disables guidance)')
    parser.add_argument('--temperature', type=float, nargs='+',
                        default=[1.0], help='one or one per sub-token')
    parser.add_argument('--top-k', type=int, nargs='+', default=[0],
                        help='one or one per sub-token (0 keeps all)')
    parser.add_argument('--top-p', type=float, nargs='+', default=[1.0],
                        help='one or one per sub-token (1 keeps all)')
    parser.add_argument('--cfg-schedule', default='constant',
                        choices=['constant', 'linear'])
    parser.add_argument('--cfg-interval', type=float, default=-1,
                        help='LlamaGen\'s --cfg-interval: positions after '
                        'CFG_INTERVAL + 1 are not guided (-1: all are)')
    parser.add_argument('--streams', type=int,
                        help='released protocol: the number of processes of '
                        'the release run to reproduce (its world size; the '
                        'samples depend on it; default: this run\'s)')
    parser.add_argument('--eval-size', type=eval_size, default=None,
                        help='side the images are resized to (bicubic) '
                        'before they are saved, as the release\'s '
                        '--image-size-eval; "auto" (the released protocol\'s '
                        'default): 256 for larger images (LlamaGen\'s 384-px '
                        'models); default under fqzoo\'s protocol: none')
    parser.add_argument('--batch-size', type=int, default=32,
                        help='released protocol: the release\'s '
                        '--per-proc-batch-size (the samples depend on it)')
    parser.add_argument('--shard-size', type=int, default=1000,
                        help='samples per shard file')
    parser.add_argument('--seed', type=int, default=0,
                        help='sample i is drawn with seed SEED + i (released '
                        'protocol: the release\'s --global-seed)')
    parser.add_argument('--no-cache', action='store_true',
                        help='sample without KV caches (same tokens, slower)')
    parser.add_argument('--device', help='default: CUDA when available')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch'],
                        help='pytorch: started by torchrun, one process per '
                        'GPU (gloo on CPU)')
    return parser.parse_args()


def eval_size(value: str):
    """``--eval-size``: ``'auto'`` or a positive int."""
    if value == 'auto':
        return value
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"'auto' or a positive int, got "
                                         f'{value!r}')
    return int(value)


def sample(args, generator, tokenizer, out: Path, ctx, common: dict):
    """Run the protocol ``args.protocol`` asks for; the record on rank 0."""
    if args.protocol == 'fqzoo':
        return run_sampling(generator, tokenizer, out, classes=args.classes,
                            cfg_schedule=args.cfg_schedule,
                            cfg_interval=args.cfg_interval,
                            eval_size=args.eval_size,
                            shard_size=args.shard_size, **common)
    if args.classes is not None:
        raise SystemExit('--classes: the released protocol draws labels '
                         'uniformly over every class of the generator')
    return run_released_sampling(
        generator, tokenizer, out, cfg_interval=args.cfg_interval,
        streams=args.streams,
        eval_size='auto' if args.eval_size is None else args.eval_size,
        chunk_size=max(1, args.shard_size // args.batch_size), **common)


def one_or_list(values: list):
    """A single value as a scalar, several as a list (one per sub-token)."""
    return values[0] if len(values) == 1 else values


def eval_command(out: Path, tokenizer_cfg) -> str:
    """The ``tools/eval_generation.py`` command for these samples."""
    samples = shlex.quote(str(out / 'samples.npz'))
    loader = tokenizer_cfg.get('test_dataloader') or {}
    if (loader.get('dataset') or {}).get('type') == 'FashionMNIST':
        return (f'python tools/eval_generation.py {samples} --ref '
                'fashion-mnist:test --metrics fid is prc --offline-fid '
                '--fmnist-classifier --inception-checkpoint '
                'weights-inception-2015-12-05-6726825d.pth')
    return (f'python tools/eval_generation.py {samples} --ref '
            'VIRTUAL_imagenet256_labeled.npz --inception-checkpoint '
            'weights-inception-2015-12-05-6726825d.pth')


def main() -> None:
    args = parse_args()
    ctx = init_processes(args.launcher, args.device)
    try:
        gen_cfg = load_config(args.config)
        tok_cfg = load_config(args.tokenizer[0])
        gen_id, gen_info = describe_model(gen_cfg, args.config,
                                          args.checkpoint)
        tok_id, tok_info = describe_model(tok_cfg, *args.tokenizer)
        generator = init_generator(gen_cfg, args.checkpoint, ctx.device)
        tokenizer = init_tokenizer(tok_cfg, args.tokenizer[1], ctx.device)
        out = Path(args.out)
        record = sample(args, generator, tokenizer, out, ctx, dict(
            num=args.num, cfg_scale=one_or_list(args.cfg_scale),
            temperature=one_or_list(args.temperature),
            top_k=one_or_list(args.top_k), top_p=one_or_list(args.top_p),
            use_cache=not args.no_cache, seed=args.seed,
            batch_size=args.batch_size, rank=ctx.rank,
            world_size=ctx.world_size, barrier=ctx.barrier,
            identity=dict(generator=gen_id, tokenizer=tok_id),
            info=dict(generator=gen_info, tokenizer=tok_info,
                      device=str(ctx.device)),
            eval_command=eval_command(out, tok_cfg)))
    finally:
        close_processes()
    if record is not None:
        timings = record['timings']
        print(f'{record["num"]} samples {record["image_shape"]}: '
              f'{out / "samples.npz"} ({timings["images_per_s"]:.1f} '
              f'images/s, {timings["tokens_per_s"]:.0f} tokens/s)\n'
              f'evaluate: {record["eval_command"]}')


if __name__ == '__main__':
    with exit_on_input_error():
        main()
