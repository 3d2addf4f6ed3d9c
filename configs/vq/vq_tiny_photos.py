# CPU-scale VQ tokenizer (one 512-code codebook) on bundled photo patches.
_base_ = [
    '../_base_/models/tiny_vqgan.py',
    '../_base_/datasets/photo_patches.py',
    '../_base_/evaluation/offline_metrics.py',
    '../_base_/schedules/cpu_short.py',
    '../_base_/default_runtime.py',
]
custom_hooks = [
    dict(type='ReconstructionGridHook', interval=500, num_samples=8),
    dict(type='CodebookHealthHook', interval=100, usage_floor=0.05),
]
