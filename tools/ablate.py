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
    python tools/ablate.py configs/ablation/*.py --seeds 0 1 --parallel 4
    python tools/ablate.py configs/ablation/*.py --seeds 0 1 2 \\
        --launcher slurm --partition gpu --gpus-per-run 1 \\
        --cpus-per-run 8 --timeout-min 600 --slurm-arg account=myproj

Runs go one after another here (default), ``--parallel N`` side by side
here (each with cores // N threads, or one GPU each), or one Slurm job per
(config, seed) with ``--launcher slurm`` (submitit: pip install
"fqzoo[cluster]"); the report is the same (docs/distributed.md).
"""
import argparse
import os.path as osp

from mmengine.config import DictAction

from fqzoo.ablation import (
    LocalLauncher,
    SlurmLauncher,
    run_ablation,
    write_report,
)
from fqzoo.errors import exit_on_input_error


def parse_args(argv=None) -> argparse.Namespace:
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
    launch = parser.add_argument_group('where the runs run')
    launch.add_argument('--launcher', choices=['local', 'slurm'],
                        default='local', help='here, or one Slurm job per '
                        '(config, seed) (submitit)')
    launch.add_argument('--parallel', type=int, default=1,
                        help='local: runs side by side, each with cores // N '
                        'threads or one GPU')
    launch.add_argument('--partition', help='slurm: partition')
    launch.add_argument('--gpus-per-run', type=int, default=0,
                        help='slurm: GPUs of a job')
    launch.add_argument('--cpus-per-run', type=int, default=4,
                        help='slurm: CPU cores of a job')
    launch.add_argument('--timeout-min', type=int, default=240,
                        help='slurm: time limit of a job, minutes')
    launch.add_argument('--slurm-arg', nargs='+', action=DictAction,
                        default={}, metavar='KEY=VALUE',
                        help='slurm: more sbatch options, e.g. account=proj '
                        'qos=normal')
    args = parser.parse_args(argv)
    if args.launcher == 'slurm' and args.parallel != 1:
        parser.error('--parallel is for --launcher local (Slurm runs every '
                     'job as soon as it schedules it)')
    return args


def build_launcher(args: argparse.Namespace):
    """The launcher the command line asks for."""
    if args.launcher == 'slurm':
        return SlurmLauncher(
            osp.join(args.work_dir, 'slurm'), partition=args.partition,
            gpus_per_run=args.gpus_per_run, cpus_per_run=args.cpus_per_run,
            timeout_min=args.timeout_min, slurm_args=dict(args.slurm_arg))
    return LocalLauncher(args.parallel)


def main() -> None:
    args = parse_args()
    results = run_ablation(args.configs, args.work_dir, seeds=args.seeds,
                           max_iters=args.max_iters,
                           cfg_options=args.cfg_options,
                           retry_failed=args.retry_failed,
                           launcher=build_launcher(args))
    files = write_report(results, args.work_dir)
    print(files['md'].read_text())
    print('\n'.join(f'{kind}: {path}' for kind, path in files.items()))


if __name__ == '__main__':
    with exit_on_input_error():
        main()
