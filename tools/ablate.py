"""Train and evaluate several configs under the same budget and compare them.

The configs are tokenizers or token generators. Each (config, seed) run
trains in its own process in ``WORK_DIR/<config name>/seed_<s>/`` and is
tested on the config's test split (a generator with a ``sample_eval`` entry
is also sampled and scored per guidance scale); then
``WORK_DIR/ablation.md``, ``ablation.csv``,
``ablation_summary.csv`` and ``ablation.png`` are written. Started again
with the same ``--work-dir``, finished runs are skipped (see docs/ablations.md).

Examples:
    python tools/ablate.py configs/ablation/vq.py configs/ablation/fq2.py \\
        --max-iters 1000 --seeds 0 1 2 --work-dir work_dirs/ablation
    python tools/ablate.py configs/ablation/*.py --cfg-options \\
        train_dataloader.batch_size=16
    python tools/ablate.py configs/ablation/far_heads/*.py \\
        --work-dir work_dirs/far_heads
"""
import argparse

from mmengine.config import DictAction

from fqzoo.ablation import run_ablation, write_report


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train and evaluate configs under one budget, compare')
    parser.add_argument('configs', nargs='+', help='config files (their '
                        'file names must differ)')
    parser.add_argument('--work-dir', default='work_dirs/ablation',
                        help='where the runs and the report go')
    parser.add_argument('--max-iters', type=int,
                        help='training iterations of every run (also clips '
                        'val_interval and scheduler end/T_max)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0],
                        help='seeds each config is trained with')
    parser.add_argument('--retry-failed', action='store_true',
                        help='run failed runs again (finished ones are '
                        'always skipped)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override entries of every config, e.g. '
                        'train_dataloader.batch_size=16')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    results = run_ablation(args.configs, args.work_dir, seeds=args.seeds,
                           max_iters=args.max_iters,
                           cfg_options=args.cfg_options,
                           retry_failed=args.retry_failed)
    files = write_report(results, args.work_dir)
    print(files['md'].read_text())
    print('\n'.join(f'{kind}: {path}' for kind, path in files.items()))


if __name__ == '__main__':
    main()
