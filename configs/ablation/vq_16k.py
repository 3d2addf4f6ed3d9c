# vq.py at 16384 codes (14 bits per token), where plain VQ's codebook
# collapses: the large-K row beside simvq_16k.py.
_base_ = ['./vq.py']
model = dict(quantizer=dict(codebook_size=16384))
