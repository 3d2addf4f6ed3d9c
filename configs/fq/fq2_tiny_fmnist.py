# FQ-2 on Fashion-MNIST (32x32, 8x8 tokens): the quickstart recipe with two
# 256-code sub-codebooks (512 codes in all, as configs/vq/vq_tiny_fmnist.py),
# the tokenizer of the first FAR run (docs/generation.md).
# configs/ablation/fq2.py is the quickstart tokenizer on the 1500-iteration
# schedule the runs in docs/generation.md used.
_base_ = ['../ablation/fq2.py']

model = dict(quantizer=dict(quantizer=dict(codebook_size=256)))

_data = dict(type='FashionMNIST', data_root='{{$FQZOO_FASHION_MNIST:/usr/share/datasets/fashion-mnist}}',
             image_size=32)
train_dataloader = dict(batch_size=16,
                        dataset=dict(_delete_=True, split='train', **_data))
val_dataloader = dict(batch_size=64,
                      dataset=dict(_delete_=True, split='test', **_data))
test_dataloader = val_dataloader
# Pixel metrics and usage only: the 10000 test images make the feature-based
# metrics slow on CPU.
val_evaluator = [dict(type='PSNR'), dict(type='SSIM'),
                 dict(type='CodebookUsage')]
test_evaluator = val_evaluator
train_cfg = dict(val_interval=1500)
