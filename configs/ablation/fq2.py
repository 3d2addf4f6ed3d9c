# FQ-2: two 512-code sub-codebooks, disentanglement 0.1, EfficientNet teacher
# on branch 1 (the quickstart tokenizer).
_base_ = ['../quickstart/fq2_effnet_tiny_photos.py']
