"""MMEngine's ``CheckpointHook`` with crash-safe bookkeeping."""
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook

from fqzoo.registry import HOOKS
from fqzoo.utils.checkpoint import write_text_atomic


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose periodic saves survive a kill at any point.

    MMEngine's hook deletes the oldest checkpoint before writing the new
    one and rewrites ``work_dir/last_checkpoint`` in place. This one, for
    checkpoints in a local folder:

    1. writes the checkpoint through ``runner.save_checkpoint``, which
       :class:`~fqzoo.engine.TokenizerRunner` makes atomic (temporary file,
       fsync, rename);
    2. then points ``last_checkpoint`` at it, atomically too;
    3. only then deletes the checkpoints beyond ``max_keep_ckpts``.

    So a complete checkpoint is on disk at every moment after the first
    save, and ``last_checkpoint`` never names a partial file. Remote
    ``out_dir`` backends keep MMEngine's behaviour. Arguments are
    ``CheckpointHook``'s; ``TokenizerRunner`` uses this class for a
    ``default_hooks.checkpoint`` of type ``CheckpointHook``.

    Example:
        >>> default_hooks = dict(checkpoint=dict(
        ...     type='AtomicCheckpointHook', interval=1000, by_epoch=False,
        ...     max_keep_ckpts=3))
    """

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        if not isinstance(self.file_backend, LocalBackend):
            super()._save_checkpoint_with_step(runner, step, meta)
            return
        outdated = []
        if self.max_keep_ckpts > 0 and (not self.keep_ckpt_ids
                                        or self.keep_ckpt_ids[-1] != step):
            # a deque with maxlen=max_keep_ckpts: make room before appending
            while len(self.keep_ckpt_ids) >= self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir, filename, self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta, by_epoch=self.by_epoch,
            backend_args=self.backend_args, **self.args)
        if not is_main_process():
            return
        write_text_atomic(osp.join(runner.work_dir, 'last_checkpoint'),
                          self.last_ckpt)
        for old in outdated:
            path = self.file_backend.join_path(self.out_dir,
                                               self.filename_tmpl.format(old))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                self.file_backend.rmtree(path)
