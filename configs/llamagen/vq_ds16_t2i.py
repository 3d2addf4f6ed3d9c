# LlamaGen's text-to-image VQ-16 tokenizer (released vq_ds16_t2i.pt,
# peizesun/llamagen_t2i): the architecture of vq_ds16_c2i.py, trained on
# LAION COCO (50M) and 10M internal images (not reproducible here: the
# training data of this config stays ImageNet).
_base_ = ['./vq_ds16_c2i.py']
