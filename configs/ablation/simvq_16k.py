# simvq.py at 16384 codes (vq_16k.py with SimVQ's codebook).
_base_ = ['./simvq.py']
model = dict(quantizer=dict(codebook_size=16384))
