# Fashion-MNIST, 28x28 gray images resized to 32x32 RGB, from the folder the
# environment variable FQZOO_FASHION_MNIST names, else the Debian package
# dataset-fashion-mnist's (docs/datasets.md: where to get the four IDX files).
# 60000 train images; the 10000 test images serve as val and test.
dataset_type = 'FashionMNIST'
data_root = '{{$FQZOO_FASHION_MNIST:/usr/share/datasets/fashion-mnist}}'
image_size = 32

train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 image_size=image_size),
)
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='test',
                 image_size=image_size),
)
test_dataloader = val_dataloader
