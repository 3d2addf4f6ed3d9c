# ImageNet codes extracted by tools/extract_codes.py --ten-crop (LlamaGen's
# recipe); the model's data preprocessor draws one of the 10 views per
# sample (resume-exact). 8 GPUs x 32 = 256.
# Set data_root to the output folder of the extraction.
train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CodeDataset', data_root='data/imagenet_codes/train',
                 view=None),
)
