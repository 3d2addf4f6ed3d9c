"""Train a tokenizer with the MMEngine Runner (mmpretrain's ``train.py``).

Examples:
    python tools/train.py configs/vq/vqgan_tiny.py
    python tools/train.py CONFIG --resume            # latest in work_dir
    python tools/train.py CONFIG --resume work_dirs/x/iter_4000.pth
    python tools/train.py CONFIG --amp --cfg-options train_cfg.max_iters=100
    bash tools/dist_train.sh CONFIG 8                # 8 GPUs
    python tools/train.py CONFIG --dry-run           # check weights, data
    bash tools/dist_train.sh configs/far/far_l_fqgan_dual_fsdp.py 8  # FSDP
"""
import argparse
import os
import os.path as osp
import sys

import torch
from mmengine.config import Config, DictAction
from mmengine.runner import FlexibleRunner

from fqzoo.engine.runner import (
    build_runner,
    close_process_group,
    use_gloo_without_cuda,
)
from fqzoo.errors import exit_on_input_error
from fqzoo.registry import RUNNERS
from fqzoo.utils.config import load_config
from fqzoo.utils.preflight import (
    MissingRequirementsError,
    dry_run,
    ensure_requirements,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a tokenizer')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir',
                        help='where logs and checkpoints go; defaults to '
                        'work_dirs/<config name>')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from this checkpoint; without a value, '
                        'from the latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision (AmpOptimWrapper) for every '
                        'optimizer')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. '
                        'train_cfg.max_iters=100')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        help='job launcher')
    parser.add_argument('--dry-run', action='store_true',
                        help='only check that the weight files and data '
                        'folders the config needs are here (exit 1 if not)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if args.resume not in (None, 'auto') and not osp.isfile(args.resume):
        parser.error(f'--resume {args.resume}: no such checkpoint file')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def use_amp(cfg: Config) -> None:
    """Make every optimizer wrapper of ``cfg.optim_wrapper`` an
    ``AmpOptimWrapper`` (a single wrapper or an ``OptimWrapperDict``
    config such as ``dict(constructor=..., autoencoder=..., discriminator=...)``).
    """
    if not torch.cuda.is_available():
        raise SystemExit('--amp needs a GPU: MMEngine\'s AmpOptimWrapper '
                         'refuses to run on CPU')
    optim = cfg.optim_wrapper
    entries = ([optim] if 'optimizer' in optim else
               [v for v in optim.values() if isinstance(v, dict)])
    for entry in entries:
        if entry.get('type', 'OptimWrapper') not in ('OptimWrapper',
                                                     'AmpOptimWrapper'):
            raise SystemExit(f'--amp: optimizer wrapper type '
                             f'"{entry["type"]}" is not OptimWrapper')
        entry['type'] = 'AmpOptimWrapper'
        entry.setdefault('loss_scale', 'dynamic')


def check_strategy(cfg: Config) -> None:
    """A ``strategy`` (FSDP ...) is run by a ``FlexibleRunner`` only: refuse
    a config whose runner would silently ignore it."""
    if cfg.get('strategy') is None:
        return
    runner = RUNNERS.get(cfg.get('runner_type', 'Runner'))
    if not (isinstance(runner, type) and issubclass(runner, FlexibleRunner)):
        raise SystemExit(
            f'the config sets strategy={cfg.strategy.get("type")} but its '
            f'runner_type {cfg.get("runner_type", "Runner")} ignores '
            f'strategies: set runner_type = \'TokenizerFlexibleRunner\'')


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command line to the config."""
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        use_amp(cfg)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    use_gloo_without_cuda(cfg)
    check_strategy(cfg)
    return cfg


def main() -> None:
    args = parse_args()
    cfg = merge_args(load_config(args.config), args)
    if args.dry_run:
        sys.exit(dry_run(cfg, args.config))
    try:
        ensure_requirements(cfg, args.config)
    except MissingRequirementsError as err:
        raise SystemExit(str(err)) from None
    build_runner(cfg).train()
    close_process_group()


if __name__ == '__main__':
    with exit_on_input_error():
        main()
