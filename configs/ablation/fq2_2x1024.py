# FQ-2 with two 1024-code sub-codebooks (20 bits per token): the FQ-2 of
# fq2.py at twice the entries of vq.py's single 1024-code codebook.
_base_ = ['./fq2.py']
model = dict(quantizer=dict(quantizer=dict(codebook_size=1024)))
