# Training recipe of the shipped `fqzoo-fmnist-ar` generator: the AR
# baseline of docs/generation.md (configs/far/ar_tiny_fmnist.py: one more
# trunk layer, one linear head) on the shipped VQ tokenizer's codes, on the
# schedule of ./fmnist_far.py.
_base_ = ['./fmnist_far.py']

codes_root = 'work_dirs/shipped/codes/vq/train'
test_codes_root = 'work_dirs/shipped/codes/vq/test'
model = dict(
    tokens=codes_root,
    backbone=dict(num_layers=5),
    head=dict(_delete_=True, type='ParallelLinearHead'),
)
train_dataloader = dict(dataset=dict(data_root=codes_root))
test_dataloader = dict(dataset=dict(data_root=test_codes_root))
