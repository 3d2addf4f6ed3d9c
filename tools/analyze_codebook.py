"""Codebook usage and geometry of a trained tokenizer, per sub-codebook.

Encodes a dataset split of the config and writes to ``--out``:
``usage.png`` (code counts by rank per sub-codebook), ``embedding.png``
(2-D PCA or t-SNE of each sub-codebook's code vectors, coloured by usage),
``stats.json`` (usage, perplexity, used and dead codes per sub-codebook)
and ``counts.npy`` (``[G, K]``).

Examples:
    python tools/analyze_codebook.py CONFIG CKPT --out work_dirs/codebook
    python tools/analyze_codebook.py CONFIG CKPT --split train \\
        --max-samples 5000 --method tsne --out codebook_tsne
"""
import argparse

import torch
from mmengine.config import DictAction

from fqzoo.apis import init_tokenizer
from fqzoo.apis.codebook_analysis import analyze_codebook
from fqzoo.apis.codes import build_split_dataset
from fqzoo.errors import exit_on_input_error
from fqzoo.utils.config import load_config


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Codebook usage and geometry per sub-codebook')
    parser.add_argument('config', help='tokenizer config file')
    parser.add_argument('checkpoint', help='tokenizer checkpoint')
    parser.add_argument('--split', default='val',
                        choices=['train', 'val', 'test'],
                        help='whose dataloader\'s dataset to count codes on')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--method', default='pca', choices=['pca', 'tsne'],
                        help='2-D embedding (t-SNE needs scikit-learn)')
    parser.add_argument('--max-codes', type=int, default=4096,
                        help='codes per sub-codebook in the embedding '
                        '(random subset of larger codebooks)')
    parser.add_argument('--max-samples', type=int,
                        help='count codes on the first N samples only')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available()
                        else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    tokenizer = init_tokenizer(cfg, args.checkpoint, device=args.device)
    files = analyze_codebook(
        tokenizer, build_split_dataset(cfg, args.split), args.out,
        method=args.method, max_codes=args.max_codes,
        batch_size=args.batch_size, max_samples=args.max_samples,
        seed=args.seed)
    print()
    print(files['stats'].read_text())
    print('\n'.join(f'{kind}: {path}' for kind, path in files.items()))


if __name__ == '__main__':
    with exit_on_input_error():
        main()
