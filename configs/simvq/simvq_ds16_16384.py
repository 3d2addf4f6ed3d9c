# SimVQ (Zhu et al. 2024, arXiv 2411.02038) in LlamaGen's VQ-16 tokenizer on
# ImageNet 256: configs/vq/vqgan_ds16_imagenet.py with its 16384 x 8
# codebook replaced by a frozen 16384 x 8 one through a learned 8 x 8 linear
# layer. (The SimVQ release trains 128 px, downsample 8, 128-channel codes
# in the MAGVIT-2 trunk; this is the FQGAN paper's ds16 setting.)
_base_ = ['../vq/vqgan_ds16_imagenet.py']
model = dict(
    quantizer=dict(_delete_=True, type='SimVQ', codebook_size=16384,
                   embed_dim=8, beta=0.25))
