"""Encode a dataset split of a config to token indices (for token models).

Writes shards ``codes_*.npy`` (``[n, G, h, w]``, or ``[n, A, G, h, w]`` with
``--ten-crop`` / ``--flip``), ``labels_*.npy`` and ``manifest.json`` to
``--out``; read them back with ``fqzoo.datasets.CodeDataset``. The manifest
records the token layout and the checkpoint's sha256. Started again with the
same ``--out``, complete shards are skipped; a folder made with other
settings is refused, and shards made before the checkpoint file changed are
redone. With ``torchrun ... --launcher pytorch`` each process encodes its
share of the shards.

Examples:
    python tools/extract_codes.py CONFIG CKPT --split train \\
        --out work_dirs/codes/train --ten-crop
    python tools/extract_codes.py CONFIG CKPT --split val --out codes/val
    torchrun --nproc_per_node 8 tools/extract_codes.py CONFIG CKPT \\
        --split train --out codes/train --ten-crop --launcher pytorch
"""
import argparse
from pathlib import Path

from mmengine.config import DictAction

from fqzoo.apis import init_tokenizer
from fqzoo.apis.codes import build_split_dataset, extract_codes
from fqzoo.errors import exit_on_input_error
from fqzoo.utils.config import load_config
from fqzoo.utils.distributed import close_processes, init_processes


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Encode a dataset split to token indices')
    parser.add_argument('config', help='tokenizer config file')
    parser.add_argument('checkpoint', help='tokenizer checkpoint')
    parser.add_argument('--split', default='train',
                        choices=['train', 'val', 'test'],
                        help='whose dataloader\'s dataset to encode')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--shard-size', type=int, default=4096,
                        help='samples per shard file')
    parser.add_argument('--ten-crop', action='store_true',
                        help='codes of 10 views per image (LlamaGen): 5 '
                        'crops of the image resized by 1.1 and their flips')
    parser.add_argument('--flip', action='store_true',
                        help='codes of the image and its horizontal flip')
    parser.add_argument('--num-workers', type=int, default=0)
    parser.add_argument('--device', help='default: CUDA when available')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch'],
                        help='pytorch: started by torchrun, one process per '
                        'GPU (gloo on CPU)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries (e.g. the dataset\'s '
                        'pipeline)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    ctx = init_processes(args.launcher, args.device)
    try:
        cfg = load_config(args.config, args.cfg_options)
        tokenizer = init_tokenizer(cfg, args.checkpoint, device=ctx.device)
        dataset = build_split_dataset(cfg, args.split)
        manifest = extract_codes(
            tokenizer, dataset, args.out, checkpoint=args.checkpoint,
            batch_size=args.batch_size, shard_size=args.shard_size,
            ten_crop=args.ten_crop, flip=args.flip,
            num_workers=args.num_workers,
            meta=dict(split=args.split, cfg_options=args.cfg_options),
            info=dict(config=str(Path(args.config).resolve())),
            rank=ctx.rank, world_size=ctx.world_size, barrier=ctx.barrier)
    finally:
        close_processes()
    if manifest is not None:
        print(f'\n{manifest["count"]} samples, codes '
              f'{manifest["code_shape"]} ({manifest["dtype"]}) in '
              f'{len(manifest["shards"])} shards: '
              f'{Path(args.out) / "manifest.json"}')


if __name__ == '__main__':
    with exit_on_input_error():
        main()
