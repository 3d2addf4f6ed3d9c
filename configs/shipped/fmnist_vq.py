# The shipped `fqzoo-fmnist-vq` tokenizer for inference
# (fqzoo/zoo_assets/fqzoo-fmnist-vq.safetensors): plain VQ on Fashion-MNIST,
# 32x32 images, 8x8 tokens of one 512-code codebook. Trained with
# ./train/fmnist_vq.py.
_base_ = ['./train/fmnist_vq.py']
