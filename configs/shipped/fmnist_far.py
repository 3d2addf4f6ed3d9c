# The shipped `fqzoo-fmnist-far` generator for inference
# (fqzoo/zoo_assets/fqzoo-fmnist-far.safetensors): FAR (factorized AR head)
# over the 8x8 tokens of 2 x 256 codes of the shipped `fqzoo-fmnist-fq2`
# tokenizer, 10 Fashion-MNIST classes. Trained with ./train/fmnist_far.py;
# the token layout is set here, so it builds without the codes folder.
_base_ = ['./train/fmnist_far.py']

model = dict(tokens=None, grid_size=[8, 8], codebook_sizes=[256, 256])
