"""Codebook health: log windowed usage, perplexity and dead codes of every
sub-codebook, warn when usage collapses, optionally re-seed dead codes."""
from typing import Optional, Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from fqzoo.registry import HOOKS


@HOOKS.register_module()
class CodebookHealthHook(Hook):
    """Every ``interval`` training iterations, read the model's
    ``quantizer.codebook_stats()`` and log ``train/codebook{i}_{key}``
    scalars (usage, perplexity, dead_codes) through the message hub, so they
    reach the log and TensorBoard.

    Args:
        interval (int): iterations between checks. Defaults to 100.
        usage_floor (float): warn when a sub-codebook's usage drops below
            this fraction. Defaults to 0.1.
        restart (bool): call ``quantizer.restart_dead_codes()`` at each
            check. Defaults to False.
        quantizer_attr (str): attribute of the (unwrapped) model holding the
            quantizer. Defaults to ``'quantizer'``.

    Example:
        >>> custom_hooks = [dict(type='CodebookHealthHook', interval=200,
        ...                      usage_floor=0.2, restart=True)]
    """

    priority = 'NORMAL'

    def __init__(self, interval: int = 100, usage_floor: float = 0.1,
                 restart: bool = False,
                 quantizer_attr: str = 'quantizer') -> None:
        self.interval = interval
        self.usage_floor = usage_floor
        self.restart = restart
        self.quantizer_attr = quantizer_attr

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not self.every_n_train_iters(runner, self.interval):
            return
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        quantizer = getattr(model, self.quantizer_attr)
        self.log_stats(runner, quantizer.codebook_stats())
        if self.restart:
            restarted = quantizer.restart_dead_codes()
            runner.message_hub.update_scalar('train/codebook_restarted',
                                             restarted)

    def log_stats(self, runner, stats: Sequence[dict]) -> None:
        """Log each sub-codebook's statistics; warn on low usage."""
        for i, codebook in enumerate(stats):
            for key, value in codebook.items():
                runner.message_hub.update_scalar(f'train/codebook{i}_{key}',
                                                 float(value))
            usage = float(codebook['usage'])
            if usage < self.usage_floor:
                runner.logger.warning(
                    f'Codebook {i} usage {usage:.3f} is below '
                    f'{self.usage_floor} at iteration {runner.iter + 1} '
                    f'({int(codebook["dead_codes"])} dead codes).')
