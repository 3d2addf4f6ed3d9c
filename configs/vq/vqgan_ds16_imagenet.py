# LlamaGen's VQ-16 tokenizer on ImageNet 256 (the paper's VQ baseline:
# rFID 2.19, PSNR 20.79 at 16384 codes): 8 GPUs x 32 images.
_base_ = [
    '../_base_/models/vqgan_ds16.py',
    '../_base_/datasets/imagenet.py',
    '../_base_/evaluation/paper_metrics.py',
    '../_base_/schedules/adam_400k.py',
    '../_base_/default_runtime.py',
]
custom_hooks = [
    dict(type='ReconstructionGridHook', interval=5000, num_samples=8),
    dict(type='CodebookHealthHook', interval=1000, usage_floor=0.05),
]
