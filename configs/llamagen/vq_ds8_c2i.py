# LlamaGen's VQ-8 tokenizer (released vq_ds8_c2i.pt; vq_model.py "VQ-8"):
# VQ-16's trunk with widths 128 x (1, 2, 2, 4), downsample 8, 32x32 tokens
# at 256 px; 70M parameters; rFID 0.59, PSNR 25.45 on ImageNet 256.
_base_ = ['./vq_ds16_c2i.py']
model = dict(encoder=dict(ch_mult=(1, 2, 2, 4)),
             decoder=dict(ch_mult=(1, 2, 2, 4)))
