"""Reconstruct image files, whole and per sub-codebook.

For each image writes ``OUT/<name>.png``: original | reconstruction |
one decode per sub-codebook branch (the other branches replaced by their
mean over positions, or zeros with ``--ablate zero``; none for a one-branch
quantizer), and ``OUT/grid.png`` with every image's strip as a row.

Examples:
    python tools/reconstruct.py CONFIG CKPT photos/*.jpg --out work_dirs/recon
    python tools/reconstruct.py CONFIG CKPT a.png --out recon --size 256 \\
        --ablate zero
"""
import argparse

import torch
from mmengine.config import DictAction

from fqzoo.apis import init_tokenizer
from fqzoo.apis.reconstruction import config_resolution, reconstruct_files
from fqzoo.errors import exit_on_input_error
from fqzoo.utils.config import load_config


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Reconstruct images, whole and per sub-codebook')
    parser.add_argument('config', help='tokenizer config file')
    parser.add_argument('checkpoint', help='tokenizer checkpoint')
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--size', type=int,
                        help='side images are resized and centre-cropped '
                        'to; defaults to the config\'s test resolution')
    parser.add_argument('--ablate', default='mean', choices=['mean', 'zero'],
                        help='what replaces the other branches when one '
                        'branch is decoded alone')
    parser.add_argument('--scale', type=int,
                        help='nearest-neighbour upscaling in the PNGs; '
                        'defaults to max(1, 128 // size)')
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available()
                        else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    size = args.size or config_resolution(cfg)
    if size is None:
        raise SystemExit('The config names no image size: pass --size')
    tokenizer = init_tokenizer(cfg, args.checkpoint, device=args.device)
    written = reconstruct_files(
        tokenizer, args.images, args.out, size=size, ablate=args.ablate,
        scale=args.scale or max(1, 128 // size), batch_size=args.batch_size)
    print('\n'.join(map(str, written)))


if __name__ == '__main__':
    with exit_on_input_error():
        main()
