# 32x32 crops of the 11 photos bundled with scikit-image, scikit-learn and
# matplotlib (see docs/datasets.md): real images, offline, CPU-friendly.
# Train crops come from 9 photos, val/test crops from the 2 held-out ones
# (coffee, grace_hopper); every crop is a fixed function of (seed, index).
dataset_type = 'BundledPhotoPatches'
crop_size = 32
# Photos are downscaled by this factor before cropping (0.5: a 32x32 crop
# shows a 64x64 region of the original photo). Training crops are drawn at
# three scales around it (docs/cpu_recipe.md).
scale = 0.5
train_scales = (0.35, 0.5, 0.7)

train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, split='train', crop_size=crop_size, scale=scale,
                 scales=train_scales, num_samples=2000),
)
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, split='val', crop_size=crop_size, scale=scale,
                 num_samples=64),
)
test_dataloader = val_dataloader
