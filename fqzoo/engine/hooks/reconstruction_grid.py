"""Periodic originals | reconstructions grids of a fixed batch of images."""
from pathlib import Path
from typing import Optional

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import Tensor

from fqzoo.registry import HOOKS
from fqzoo.visualization import reconstruction_grid, save_png


@HOOKS.register_module()
class ReconstructionGridHook(Hook):
    """Writes a grid of originals | reconstructions every ``interval``
    training iterations and after each validation.

    The images are the first ``num_samples`` of the validation data loader
    (the training one when there is no validation loop), taken once and
    reused, so successive grids show the same images. Each grid goes to
    ``{work_dir}/{out_dir}/{tag}.png`` and to ``runner.visualizer.add_image``
    (TensorBoard when the config has ``TensorboardVisBackend``). The model
    must have ``reconstruct(images)``.

    Args:
        interval (int): training iterations between grids; 0 disables the
            training-time grids. Defaults to 1000.
        num_samples (int): images in the grid. Defaults to 8.
        pairs_per_row (int): (original, reconstruction) pairs per grid row.
            Defaults to 4.
        out_dir (str): folder under ``work_dir``. Defaults to 'vis'.

    Example:
        >>> custom_hooks = [dict(type='ReconstructionGridHook', interval=500)]
    """

    priority = 'LOW'

    def __init__(self, interval: int = 1000, num_samples: int = 8,
                 pairs_per_row: int = 4, out_dir: str = 'vis') -> None:
        if num_samples < 1:
            raise ValueError(f'num_samples must be >= 1, got {num_samples}')
        self.interval = interval
        self.num_samples = num_samples
        self.pairs_per_row = pairs_per_row
        self.out_dir = out_dir
        self._images: Optional[Tensor] = None

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if self.interval > 0 and self.every_n_train_iters(runner,
                                                          self.interval):
            self.write_grid(runner, f'iter_{runner.iter + 1}', runner.iter + 1)

    def after_val_epoch(self, runner,
                        metrics: Optional[dict] = None) -> None:
        self.write_grid(runner, f'val_iter_{runner.iter}', runner.iter)

    def write_grid(self, runner, tag: str, step: int) -> Optional[Path]:
        """Reconstruct the fixed images (on every rank) and write the grid
        (on the main process).

        Returns:
            Path | None: the PNG written, None on other ranks.
        """
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        images = self._fixed_images(runner, model)
        was_training = model.training
        model.eval()
        with torch.no_grad():
            recons = model.reconstruct(images)
        model.train(was_training)
        if not is_main_process():
            return None
        grid = reconstruction_grid(images, recons, self.pairs_per_row)
        runner.visualizer.add_image('reconstructions', grid, step=step)
        return save_png(grid, Path(runner.work_dir, self.out_dir, f'{tag}.png'))

    def _fixed_images(self, runner, model) -> Tensor:
        if self._images is None:
            loader = (runner.val_loop.dataloader if runner.val_loop is not None
                      else runner.train_dataloader)
            batches = []
            for data in loader:
                batches.append(model.data_preprocessor(data, False)['inputs'])
                if sum(len(b) for b in batches) >= self.num_samples:
                    break
            self._images = torch.cat(batches)[:self.num_samples]
        return self._images
