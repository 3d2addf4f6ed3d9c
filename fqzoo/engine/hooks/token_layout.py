"""Every checkpoint records its token layout; codes that do not belong to
the model are refused before training starts."""
from typing import Iterator, Optional, Set, Tuple

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from fqzoo.errors import InputError
from fqzoo.registry import HOOKS
from fqzoo.utils.token_layout import (
    KEY,
    TOKENIZER_KEY,
    check_same_layout,
    merge_layouts,
)


def _model(runner):
    model = runner.model
    return model.module if is_model_wrapper(model) else model


def _loop_datasets(runner) -> Iterator[Tuple[str, object]]:
    """``(split, dataset)`` of the loops the runner has built."""
    for split in ('train', 'val', 'test'):
        loop = getattr(runner, f'_{split}_loop', None)
        loader = getattr(loop, 'dataloader', None)
        dataset = getattr(loader, 'dataset', None)
        if dataset is not None:
            yield split, dataset


def _model_name(runner) -> str:
    filename = getattr(runner.cfg, 'filename', None)
    return f'the model of {filename or "the config"}'


def _codes_name(split: str, dataset) -> str:
    root = getattr(dataset, 'data_root', None)
    return f'the {split} codes {root}/manifest.json' if root else \
        f'the {split} codes'


@HOOKS.register_module()
class TokenLayoutHook(Hook):
    """Writes the model's token layout into every checkpoint's ``meta``
    and checks training data against it.

    - ``before_save_checkpoint``: ``meta['token_layout']``
      (:mod:`fqzoo.utils.token_layout`): the model's ``token_layout()``
      (a tokenizer's with the grids of the image sizes it has seen), merged
      with the layout of the codes it trains on; a generator trained on
      codes also records ``meta['tokenizer_checkpoint']`` (path and sha256
      of the tokenizer checkpoint that made them).
    - ``before_train``: a dataset that knows its token layout (a
      :class:`~fqzoo.datasets.CodeDataset`) must match the model's, and all
      of the runner's code datasets must come from one tokenizer checkpoint
      (by sha256); otherwise a ValueError names both sides.
    - ``after_load_checkpoint``: a checkpoint (``load_from``, resume) whose
      recorded layout is not the model's is refused.

    Models without ``token_layout`` are left alone. ``TokenizerRunner`` and
    ``TokenizerFlexibleRunner`` register it on every run.
    """

    priority = 'NORMAL'

    def __init__(self) -> None:
        self.image_sizes: Set[Tuple[int, int]] = set()
        self.codes_layout: Optional[dict] = None
        self.tokenizer: Optional[dict] = None

    def _model_layout(self, runner) -> Optional[dict]:
        model = _model(runner)
        if not callable(getattr(model, 'token_layout', None)):
            return None
        return model.token_layout(sorted(self.image_sizes))

    def before_train(self, runner) -> None:
        layout = self._model_layout(runner)
        model_name = _model_name(runner)
        first = None
        for split, dataset in _loop_datasets(runner):
            codes = getattr(dataset, 'token_layout', None)
            if codes is None:
                continue
            if layout is not None:
                check_same_layout(codes, layout,
                                  first_name=_codes_name(split, dataset),
                                  second_name=model_name)
            source = getattr(dataset, 'tokenizer_checkpoint', None) or {}
            if first is None:
                first = (split, dataset, source)
                self.codes_layout = codes
                self.tokenizer = source or None
            elif source.get('sha256') and first[2].get('sha256') and \
                    source['sha256'] != first[2]['sha256']:
                raise InputError(
                    f'{_codes_name(*first[:2])} and '
                    f'{_codes_name(split, dataset)} do not belong together: '
                    f'made with the tokenizer checkpoints '
                    f'{first[2].get("path")} (sha256 '
                    f'{first[2]["sha256"][:16]}...) and {source.get("path")} '
                    f'(sha256 {source["sha256"][:16]}...)')

    def _record_sizes(self, data_batch) -> None:
        inputs = data_batch.get('inputs') if isinstance(data_batch, dict) \
            else None
        if inputs is None:
            return
        for image in (inputs if isinstance(inputs, (list, tuple))
                      else [inputs]):
            shape = getattr(image, 'shape', ())
            if len(shape) >= 3:
                self.image_sizes.add((int(shape[-2]), int(shape[-1])))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        self._record_sizes(data_batch)

    def after_val_iter(self, runner, batch_idx: int, data_batch=None,
                       outputs=None) -> None:
        self._record_sizes(data_batch)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        layout = self._model_layout(runner)
        if layout is None:
            return
        meta = checkpoint.setdefault('meta', {})
        meta[KEY] = merge_layouts(layout, self.codes_layout)
        if self.tokenizer:
            meta[TOKENIZER_KEY] = dict(self.tokenizer)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        recorded = (checkpoint.get('meta') or {}).get(KEY)
        layout = self._model_layout(runner)
        if recorded is None or layout is None:
            return
        source = getattr(runner, '_load_from', None) or 'being loaded'
        check_same_layout(recorded, layout,
                          first_name=f'the checkpoint {source}',
                          second_name=_model_name(runner))
        self.image_sizes.update(
            tuple(int(v) for v in key.split('x'))
            for key in (recorded.get('grids') or {}))
