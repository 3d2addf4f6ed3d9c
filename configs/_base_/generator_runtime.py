# The runtime of token generators: fqzoo's default runtime with plain DDP
# (generators use BaseModel.train_step, not the tokenizers' per-submodule
# wrapper) and checkpoints by epoch.
_base_ = ['./default_runtime.py']
model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                         broadcast_buffers=False, find_unused_parameters=False)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='CheckpointHook', interval=5, by_epoch=True,
                    max_keep_ckpts=3, save_last=True),
)
log_processor = dict(by_epoch=True)
