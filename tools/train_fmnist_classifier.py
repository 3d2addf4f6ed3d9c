"""Train the Fashion-MNIST classifier that scores generated samples.

Trains :class:`fqzoo.evaluation.fmnist_classifier.FashionMNISTClassifier`
on the 60000 training images (32x32, as :class:`fqzoo.datasets.FashionMNIST`
gives them), evaluates it on the 10000 test images after every epoch and
writes the state dict (tensors only) and a JSON record of the run next to it.
The weights shipped in ``fqzoo/evaluation/assets/`` were made with the
defaults.

Examples:
    OMP_NUM_THREADS=1 python tools/train_fmnist_classifier.py
    python tools/train_fmnist_classifier.py --epochs 8 --out my_clf.pt
"""
import argparse
import os
import sys
import time

import torch

from fqzoo.errors import exit_on_input_error
from fqzoo.evaluation.fmnist_classifier import (
    DEFAULT_CHECKPOINT,
    load_split,
    save_classifier,
    train_classifier,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train the Fashion-MNIST classifier for generation '
        'metrics')
    parser.add_argument('--data-root', default=None,
                        help='Fashion-MNIST IDX folder (default: '
                        '$FQZOO_FASHION_MNIST, else the Debian package)')
    parser.add_argument('--out', default=str(DEFAULT_CHECKPOINT),
                        help='state dict path (a .json record is written '
                        'next to it)')
    parser.add_argument('--epochs', type=int, default=4)
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--lr', type=float, default=3e-3)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    start = time.time()
    train = load_split(args.data_root, 'train')
    test = load_split(args.data_root, 'test')
    model, result = train_classifier(train, test, epochs=args.epochs,
                                     batch_size=args.batch_size, lr=args.lr,
                                     seed=args.seed)
    info = dict(result, command=' '.join([os.path.relpath(sys.argv[0])]
                                         + sys.argv[1:]),
                epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                seed=args.seed, torch=torch.__version__,
                threads=torch.get_num_threads(),
                total_seconds=round(time.time() - start, 1))
    path = save_classifier(model, args.out, info)
    print(f'test accuracy {result["test_accuracy"]:.4f}: {path}')


if __name__ == '__main__':
    with exit_on_input_error():
        main()
