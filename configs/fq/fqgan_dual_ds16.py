# FQGAN-Dual, downsample 16 (Bai et al. 2024) on ImageNet 256 with the
# released training recipe (configs/_base_/schedules/fqgan_40e.py).
_base_ = [
    '../_base_/models/fqgan_dual_ds16.py',
    '../_base_/datasets/imagenet.py',
    '../_base_/evaluation/paper_metrics.py',
    '../_base_/schedules/fqgan_40e.py',
    '../_base_/default_runtime.py',
]
