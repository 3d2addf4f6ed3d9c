# The shipped `fqzoo-fmnist-fq2` tokenizer for inference
# (fqzoo/zoo_assets/fqzoo-fmnist-fq2.safetensors, card beside it): FQ-2 on
# Fashion-MNIST, 32x32 images, 8x8 tokens of 2 x 256 codes. Trained with
# ./train/fmnist_fq2.py; the regularizers (disentanglement, EfficientNet
# teacher) act only in training and are not built here.
_base_ = ['./train/fmnist_fq2.py']

model = dict(regularizers=[])
