# The released FAR / LlamaGen c2i recipe: AdamW lr 1e-4, betas (0.9, 0.95),
# weight decay 0.05 on matrices and embeddings only (no decay on norms and
# biases), gradient clipping at 1.0, constant lr, 300 epochs, global batch 256.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=300)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(flat_decay_mult=0.0),
    clip_grad=dict(max_norm=1.0),
)
param_scheduler = []
