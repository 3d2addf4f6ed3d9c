# FQ-2 of SimVQ sub-quantizers: fq2_plain.py (two 512-code sub-codebooks, no
# regularizers) with each sub-codebook a SimVQ one; against simvq.py, the
# factorization at the same bits as fq2_plain.py against vq.py.
_base_ = ['./fq2_plain.py']
model = dict(
    quantizer=dict(quantizer=dict(_delete_=True, type='SimVQ',
                                  codebook_size=512, embed_dim=8, beta=0.25)))
