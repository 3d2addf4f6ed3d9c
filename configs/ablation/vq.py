# Plain VQ baseline: one 1024-code codebook (10 bits per token), same trunk,
# one branch head, no regularizers.
_base_ = ['./fq2.py']
model = dict(
    quantizer=dict(_delete_=True, type='VectorQuantizer', codebook_size=1024,
                   embed_dim=8, l2_norm=True, beta=0.25),
    regularizers=[])
