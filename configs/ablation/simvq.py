# SimVQ (arXiv 2411.02038): vq.py's 1024-code codebook replaced by a frozen
# random 1024 x 8 one through a learned 8 x 8 linear layer (no
# normalisation, the release's).
_base_ = ['./vq.py']
model = dict(
    quantizer=dict(_delete_=True, type='SimVQ', codebook_size=1024,
                   embed_dim=8, beta=0.25))
