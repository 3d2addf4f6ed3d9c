# Training recipe of the shipped `fqzoo-fmnist-vq` tokenizer: the VQ
# tokenizer of docs/generation.md (configs/vq/vq_tiny_fmnist.py: one
# 512-code codebook, the same trunk, no regularizers) on the schedule of
# ./fmnist_fq2.py (1000 iterations).
_base_ = ['./fmnist_fq2.py']

model = dict(
    quantizer=dict(_delete_=True, type='VectorQuantizer', codebook_size=512,
                   embed_dim=8, l2_norm=True, beta=0.25),
    regularizers=[])
