# vq_16k.py without the dead-code restart every other VQ row trains with
# (CodebookHealthHook restart=False): plain VQ as the SimVQ and IBQ papers
# compare against, where most of the 16384 codes are never used.
_base_ = ['./vq_16k.py']
custom_hooks = [
    dict(type='ReconstructionGridHook', interval=500, num_samples=8),
    dict(type='CodebookHealthHook', interval=100, usage_floor=0.05,
         restart=False),
]
