# SimVQ with 2^18 codes (the SimVQ paper's largest codebook, usage 100%) in
# the ds16 setting of simvq_ds16_16384.py.
_base_ = ['./simvq_ds16_16384.py']
model = dict(quantizer=dict(codebook_size=262144))
