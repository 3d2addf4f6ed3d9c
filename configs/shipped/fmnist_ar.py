# The shipped `fqzoo-fmnist-ar` generator for inference
# (fqzoo/zoo_assets/fqzoo-fmnist-ar.safetensors): the AR baseline (one
# linear head) over the 8x8 tokens of one 512-code codebook of the shipped
# `fqzoo-fmnist-vq` tokenizer. Trained with ./train/fmnist_ar.py.
_base_ = ['./train/fmnist_ar.py']

model = dict(tokens=None, grid_size=[8, 8], codebook_sizes=[512])
