# IBQ (arXiv 2412.02692): vq.py's 1024-code codebook trained by index
# backpropagation (argmax of <z, e>, gradient through the softmax over all
# codes; entropy loss 0.05 at temperature 0.01, the released weights).
_base_ = ['./vq.py']
model = dict(
    quantizer=dict(_delete_=True, type='IndexBackpropQuantizer',
                   codebook_size=1024, embed_dim=8))
