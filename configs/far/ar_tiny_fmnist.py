# The AR baseline of far_tiny_fmnist.py: plain VQ codes (8x8 positions, one
# 512-code token each), one linear output layer, and one more trunk layer so
# both models have about the same parameter count (1.44M vs FAR 1.48M);
# same recipe.
#   python tools/extract_codes.py configs/vq/vq_tiny_fmnist.py CKPT \
#       --split train --out work_dirs/codes/vq_fmnist/train
#   python tools/extract_codes.py configs/vq/vq_tiny_fmnist.py CKPT \
#       --split test --out work_dirs/codes/vq_fmnist/test
_base_ = ['./far_tiny_fmnist.py']
codes_root = 'work_dirs/codes/vq_fmnist/train'
test_codes_root = 'work_dirs/codes/vq_fmnist/test'
model = dict(
    tokens=codes_root,
    backbone=dict(num_layers=5),
    head=dict(_delete_=True, type='ParallelLinearHead'),
)
train_dataloader = dict(dataset=dict(data_root=codes_root))
val_dataloader = dict(dataset=dict(data_root=test_codes_root))
test_dataloader = val_dataloader
# tools/ablate.py: samples through the VQ tokenizer, as for the FAR head
# ablation (configs/ablation/far_heads/_base_/sample_eval.py).
sample_eval = dict(
    tokenizer=('configs/vq/vq_tiny_fmnist.py',
               'work_dirs/fmnist/vq_tok/iter_1500.pth'),
    num=1000,
    cfg_scale=[1.0, 3.0],
    batch_size=250,
    eval_args=['--metrics', '--fmnist-classifier'],
)
