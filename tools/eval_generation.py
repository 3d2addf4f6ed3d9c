"""Generation metrics of a samples ``.npz`` (from tools/sample.py or any
ADM-layout file), written as JSON.

- ``--metrics fid is prc`` (default): gFID, Inception Score, precision and
  recall on torch-fidelity's Inception-v3 (the published protocol; weights
  from ``--inception-checkpoint``, torch's hub cache, or a download);
- ``--offline-fid``: ``fid_effnet_offline``, the Fréchet distance on
  EfficientNet-Lite0 features (offline; not FID);
- ``--fmnist-classifier``: class accuracy and classifier FID against the
  Fashion-MNIST test set, from fqzoo's Fashion-MNIST classifier.

docs/metrics.md says which number is comparable with what.

Examples:
    python tools/eval_generation.py samples/far_b/samples.npz \\
        --ref VIRTUAL_imagenet256_labeled.npz \\
        --inception-checkpoint weights-inception-2015-12-05-6726825d.pth
    python tools/eval_generation.py samples/far_fmnist/samples.npz \\
        --ref fashion-mnist:test --metrics --offline-fid --fmnist-classifier
"""
import argparse
import json
from pathlib import Path

import torch

from fqzoo.errors import exit_on_input_error
from fqzoo.generation.evaluate import evaluate_samples
from fqzoo.generation.fidelity import INCEPTION_METRICS
from fqzoo.utils.files import write_json_atomic


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generation metrics of a samples .npz')
    parser.add_argument('samples', help='.npz with arr_0 uint8 [N, H, W, 3] '
                        '(and arr_1 labels)')
    parser.add_argument('--ref', help='reference images: an ADM reference '
                        '.npz (arr_0), a folder of images, or '
                        'fashion-mnist:test / fashion-mnist:train')
    parser.add_argument('--ref-size', type=int,
                        help='resize (shorter side) and centre-crop folder '
                        'references to this size')
    parser.add_argument('--metrics', nargs='*',
                        default=list(INCEPTION_METRICS),
                        choices=INCEPTION_METRICS,
                        help='Inception metrics (none: give the flag alone)')
    parser.add_argument('--inception-checkpoint',
                        help='local weights-inception-2015-12-05-6726825d.pth')
    parser.add_argument('--offline-fid', action='store_true',
                        help='also the EfficientNet-Lite0 Fréchet distance '
                        '(not FID)')
    parser.add_argument('--fmnist-classifier', action='store_true',
                        help='class accuracy and classifier FID of '
                        'Fashion-MNIST samples')
    parser.add_argument('--classifier-checkpoint',
                        help='other Fashion-MNIST classifier weights')
    parser.add_argument('--fmnist-root', default=None,
                        help='Fashion-MNIST IDX folder (default: '
                        '$FQZOO_FASHION_MNIST, else the Debian package)')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available()
                        else 'cpu')
    parser.add_argument('--out', help='JSON file (default: metrics.json next '
                        'to the samples)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    result = evaluate_samples(
        args.samples, args.ref, metrics=args.metrics,
        inception_checkpoint=args.inception_checkpoint,
        offline=args.offline_fid, fmnist_classifier=args.fmnist_classifier,
        classifier_checkpoint=args.classifier_checkpoint,
        ref_size=args.ref_size, fmnist_root=args.fmnist_root,
        device=args.device, batch_size=args.batch_size)
    out = Path(args.out or Path(args.samples).with_name('metrics.json'))
    write_json_atomic(out, result)
    print(json.dumps(result['metrics'], indent=2))
    print(f'written to {out}')


if __name__ == '__main__':
    with exit_on_input_error():
        main()
