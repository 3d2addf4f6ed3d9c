# The shipped `fqzoo-photos-fq2` tokenizer for inference
# (fqzoo/zoo_assets/fqzoo-photos-fq2.safetensors): the quickstart FQ-2
# (2 x 512 codes, one token per 4x4 pixels) on photos; trained on 32x32
# patches, its trunk (no norm layers, no attention) encodes whole photos
# too. Trained with ./train/photos_fq2.py; the regularizers act only in
# training and are not built here.
_base_ = ['./train/photos_fq2.py']

model = dict(regularizers=[])
