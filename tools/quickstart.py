"""Train a small tokenizer, evaluate it and show its reconstructions.

Trains CONFIG with the Runner (on CPU when there is no GPU), evaluates the
final model on the test split, and writes ``WORK_DIR/metrics.json`` and
``WORK_DIR/reconstructions.png`` (originals | reconstructions). When the
test split is held-out bundled photos (``BundledPhotoPatches``), those photos
are also encoded whole at ``--whole-size`` and cut into training-size tiles
(:mod:`fqzoo.evaluation.whole_photo`): their scores join ``metrics.json``
under ``whole/`` and ``tiled/``, and ``WORK_DIR/whole_photos.png`` shows
original | whole | tiled::

    python tools/quickstart.py configs/quickstart/fq2_effnet_tiny_photos.py \\
        --work-dir work_dirs/quickstart
"""
import argparse
import json
from pathlib import Path
from typing import Dict

import torch
from mmengine.config import DictAction
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from fqzoo.apis.reconstruction import strip_grid
from fqzoo.datasets import BundledPhotoPatches
from fqzoo.engine.runner import build_runner, use_gloo_without_cuda
from fqzoo.errors import exit_on_input_error
from fqzoo.evaluation.whole_photo import whole_photo_fidelity
from fqzoo.utils.checkpoint import to_plain
from fqzoo.utils.config import load_config
from fqzoo.visualization import reconstruction_grid, save_png

HEADLINE = ('psnr', 'ssim', 'lpips', 'perceptual', 'fid', 'usage',
            'perplexity')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', required=True,
                        help='where checkpoints, logs and results go')
    parser.add_argument('--max-iters', type=int,
                        help='train this many iterations instead of the '
                        'config\'s train_cfg.max_iters')
    parser.add_argument('--num-images', type=int, default=16,
                        help='test images in reconstructions.png')
    parser.add_argument('--whole-size', type=int, default=256,
                        help='side of the held-out photos encoded whole '
                        '(0: skip)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries')
    return parser.parse_args()


def save_reconstructions(runner: Runner, path: Path, num_images: int) -> Path:
    """Originals | reconstructions of the first test images as a PNG."""
    model = runner.model.module if is_model_wrapper(
        runner.model) else runner.model
    model.eval()
    images = []
    for data in runner.test_dataloader:
        images.append(model.data_preprocessor(data, False)['inputs'])
        if sum(len(x) for x in images) >= num_images:
            break
    images = torch.cat(images)[:num_images]
    with torch.no_grad():
        recons = model.reconstruct(images)
    scale = max(1, 96 // images.shape[-1])
    return save_png(reconstruction_grid(images, recons, scale=scale), path)


def save_whole_photos(runner: Runner, path: Path, size: int) -> dict:
    """Whole-photo and tiled scores of the held-out photos, and the strip
    original | whole | tiled in ``path``; nothing unless the test split is
    :class:`~fqzoo.datasets.BundledPhotoPatches`."""
    dataset = runner.test_dataloader.dataset
    if not isinstance(dataset, BundledPhotoPatches) or size <= 0:
        return {}
    model = runner.model.module if is_model_wrapper(
        runner.model) else runner.model
    images: dict = {}
    scores = whole_photo_fidelity(model, dataset.photo_names, size=size,
                                  tile=dataset.crop_size, images=images)
    columns = [torch.stack(images[k]) for k in ('original', 'whole', 'tiled')]
    save_png(strip_grid(columns), path)
    return scores


def summary_table(metrics: Dict[str, float]) -> str:
    """Headline metrics first (PSNR, SSIM, perceptual, usage, ...), then the
    rest, one per line."""
    def rank(key: str) -> tuple:
        name = key.split('/')[-1].lower()
        hits = [i for i, h in enumerate(HEADLINE) if name.startswith(h)]
        return (hits[0] if hits else len(HEADLINE), key)

    keys = sorted(metrics, key=rank)
    width = max(len(k) for k in keys)
    lines = [f'{"metric":<{width}}  value', '-' * (width + 12)]
    for key in keys:
        value = metrics[key]
        text = f'{value:.4f}' if isinstance(value, float) else str(value)
        lines.append(f'{key:<{width}}  {text}')
    return '\n'.join(lines)


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    cfg.work_dir = args.work_dir
    if args.max_iters is not None:
        cfg.train_cfg.max_iters = args.max_iters
    use_gloo_without_cuda(cfg)
    runner = build_runner(cfg)
    runner.train()
    metrics = to_plain(runner.test())
    work_dir = Path(args.work_dir)
    metrics.update(save_whole_photos(runner, work_dir / 'whole_photos.png',
                                     args.whole_size))
    (work_dir / 'metrics.json').write_text(json.dumps(metrics, indent=2))
    grid = save_reconstructions(runner, work_dir / 'reconstructions.png',
                                args.num_images)
    print(summary_table(metrics))
    print(f'\nmetrics: {work_dir / "metrics.json"}\nreconstructions: {grid}')
    if (work_dir / 'whole_photos.png').exists():
        print(f'whole photos: {work_dir / "whole_photos.png"}')


if __name__ == '__main__':
    with exit_on_input_error():
        main()
