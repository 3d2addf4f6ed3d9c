# configs/ablation/fq2_ibq.py on Fashion-MNIST (see fq2.py here).
_base_ = ['./fq2_plain.py']
model = dict(
    quantizer=dict(quantizer=dict(_delete_=True,
                                  type='IndexBackpropQuantizer',
                                  codebook_size=512, embed_dim=8)))
