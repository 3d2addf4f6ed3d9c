# LlamaGen's VQ-16 tokenizer (Sun et al. 2024, arXiv 2406.06525; released
# vq_ds16_c2i.pt, FoundationVision/LlamaGen tokenizer/tokenizer_image/
# vq_model.py "VQ-16"): VQGAN conv trunk with widths 128 x (1, 1, 2, 2, 4),
# two residual blocks per level, attention at the lowest resolution,
# z_channels 256, downsample 16; one l2-normalised 16384 x 8 codebook; 72M
# parameters. The released file converts into this model
# (tools/convert/llamagen_vq.py, or get_model('llamagen_vq_ds16_c2i')):
# rFID 2.19, PSNR 20.79 on ImageNet 256 (docs/zoo.md). Training it again
# uses fqzoo's ImageNet VQ recipe (LlamaGen's losses and Adam settings,
# configs/vq/vqgan_ds16_imagenet.py).
_base_ = ['../vq/vqgan_ds16_imagenet.py']
