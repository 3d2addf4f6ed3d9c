# The quantizer ablation on Fashion-MNIST (60000 training images, 32x32, 8x8
# tokens): the photo ablation's configs (configs/ablation/) with the data
# swapped, so the training set is not the bottleneck. The teacher stays the
# EfficientNet-Lite0 ImageNet one; the instrument is not: fqzoo's
# Fashion-MNIST classifier judges the reconstructions
# (FashionMNISTReconFidelity), beside PSNR, SSIM and codebook usage.
# Results: docs/ablations.md.
_base_ = ['../fq2.py']

_data = dict(type='FashionMNIST', data_root='{{$FQZOO_FASHION_MNIST:/usr/share/datasets/fashion-mnist}}',
             image_size=32)
train_dataloader = dict(dataset=dict(_delete_=True, split='train', **_data))
val_dataloader = dict(batch_size=100,
                      dataset=dict(_delete_=True, split='test', **_data))
test_dataloader = val_dataloader
val_evaluator = [dict(type='PSNR'), dict(type='SSIM'), dict(type='CodebookUsage'),
                 dict(type='FashionMNISTReconFidelity')]
test_evaluator = val_evaluator
