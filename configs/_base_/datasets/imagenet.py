# ImageNet-1k at 256x256 in folder layout (data/imagenet/{train,val}/<wnid>/
# *.JPEG; a flat val/ folder works too, with label -1), see docs/datasets.md.
# LlamaGen's tokenizer pipelines: train resizes the shorter side to
# 1.1 x 256 and takes a random 256 crop plus a horizontal flip; val resizes
# the shorter side to 256 and takes the centre 256 crop.
dataset_type = 'ImageFolderDataset'
data_root = 'data/imagenet'
image_size = 256

train_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(type='ResizeShortEdge', size=int(image_size * 1.1)),
    dict(type='RandomCrop', crop_size=image_size),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackTokenizerInputs'),
]
val_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(type='ResizeShortEdge', size=image_size),
    dict(type='CenterCrop', crop_size=image_size),
    dict(type='PackTokenizerInputs'),
]

# batch_size is per GPU: 8 GPUs x 32 = 256.
train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='train'), pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='val'), pipeline=val_pipeline),
)
test_dataloader = val_dataloader
