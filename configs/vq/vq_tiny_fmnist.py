# Plain VQ on Fashion-MNIST: one 512-code codebook (as many codes as the two
# sub-codebooks of configs/fq/fq2_tiny_fmnist.py), same trunk and recipe,
# one branch head, no regularizers. The tokenizer of the AR baseline.
_base_ = ['../fq/fq2_tiny_fmnist.py']

model = dict(
    quantizer=dict(_delete_=True, type='VectorQuantizer', codebook_size=512,
                   embed_dim=8, l2_norm=True, beta=0.25),
    regularizers=[])
