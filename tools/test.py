"""Evaluate a trained tokenizer on the config's test split.

Examples:
    python tools/test.py CONFIG work_dirs/x/iter_400000.pth
    python tools/test.py CONFIG CKPT --out metrics.json
    bash tools/dist_test.sh CONFIG CKPT 8
    python tools/test.py CONFIG CKPT --dry-run   # check weights, data, CKPT
"""
import argparse
import json
import os
import os.path as osp
import sys

from mmengine.config import DictAction
from mmengine.dist import is_main_process

from fqzoo.engine.runner import (
    build_runner,
    close_process_group,
    use_gloo_without_cuda,
)
from fqzoo.errors import exit_on_input_error
from fqzoo.utils.checkpoint import to_plain
from fqzoo.utils.config import load_config
from fqzoo.utils.preflight import (
    MissingRequirementsError,
    dry_run,
    ensure_requirements,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a tokenizer')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir',
                        help='where logs go; defaults to work_dirs/<config '
                        'name>')
    parser.add_argument('--out', help='write the metrics to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        help='job launcher')
    parser.add_argument('--dry-run', action='store_true',
                        help='only check that the checkpoint, weight files '
                        'and data folders are here (exit 1 if not)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    cfg.resume = False
    use_gloo_without_cuda(cfg)
    if args.dry_run:
        sys.exit(dry_run(cfg, args.config))
    try:
        ensure_requirements(cfg, args.config)
    except MissingRequirementsError as err:
        raise SystemExit(str(err)) from None
    metrics = build_runner(cfg).test()
    if args.out and is_main_process():
        with open(args.out, 'w') as f:
            json.dump(to_plain(metrics), f, indent=2)
    close_process_group()


if __name__ == '__main__':
    with exit_on_input_error():
        main()
