# FQ-2 of IBQ sub-quantizers: fq2_plain.py with each 512-code sub-codebook
# trained by index backpropagation (against ibq.py as fq2_plain.py against
# vq.py).
_base_ = ['./fq2_plain.py']
model = dict(
    quantizer=dict(quantizer=dict(_delete_=True,
                                  type='IndexBackpropQuantizer',
                                  codebook_size=512, embed_dim=8)))
