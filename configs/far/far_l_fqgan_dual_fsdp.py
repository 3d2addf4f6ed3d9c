# FAR-L on FQGAN-Dual codes (configs/far/far_l_fqgan_dual.py), trained with
# fully sharded data parallel (FSDP): parameters, gradients and optimizer
# states are split over the GPUs, and each transformer block (36 in the
# trunk, 4 in the head) is its own FSDP unit, gathered only while it runs.
# Same recipe and results as the DDP config; less memory per GPU.
#   bash tools/dist_train.sh configs/far/far_l_fqgan_dual_fsdp.py 8
# Checkpoints hold the full (unsharded) state dict, written by rank 0, so
# they load with init_generator / tools/sample.py like DDP ones
# (docs/distributed.md).
_base_ = ['./far_l_fqgan_dual.py']
runner_type = 'TokenizerFlexibleRunner'
strategy = dict(
    type='TokenizerFSDPStrategy',
    model_wrapper=dict(
        # scoped name: MMEngine looks wrap policies up in its root registry
        auto_wrap_policy=dict(
            type='fqzoo.module_type_wrap_policy',
            module_types=['fqzoo.models.generators.layers.TransformerBlock']),
        sharding_strategy='FULL_SHARD',
        use_orig_params=True),
    state_dict_cfg='full',
)
