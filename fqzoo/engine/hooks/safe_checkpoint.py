"""Keep fqzoo checkpoints loadable with ``torch.load(weights_only=True)``."""
from typing import Optional

from mmengine.hooks import Hook

from fqzoo.registry import HOOKS
from fqzoo.utils.checkpoint import (
    plain_message_hub_state,
    restore_message_hub_state,
    to_plain,
)


@HOOKS.register_module()
class SafeCheckpointHook(Hook):
    """Stores only tensors and plain Python values in checkpoints.

    MMEngine puts ``HistoryBuffer`` objects (numpy arrays and bound methods)
    and numpy scalars into ``checkpoint['message_hub']``; torch >= 2.6 refuses
    them under ``weights_only=True``. This hook converts the message hub state
    (and numpy values anywhere in meta, optimizer and scheduler states) to
    plain values in ``before_save_checkpoint``, and rebuilds the message hub
    state in ``after_load_checkpoint``, which ``Runner.load_checkpoint`` calls
    before ``Runner.resume`` passes the state to ``MessageHub.load_state_dict``.

    ``TokenizerRunner`` registers it on every run; it is idempotent.

    Example:
        >>> custom_hooks = [dict(type='SafeCheckpointHook')]
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        for key, value in checkpoint.items():
            if key == 'message_hub':
                checkpoint[key] = plain_message_hub_state(value)
            elif key != 'state_dict':
                checkpoint[key] = to_plain(value)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state: Optional[dict] = checkpoint.get('message_hub')
        if state is not None:
            checkpoint['message_hub'] = restore_message_hub_state(state)
