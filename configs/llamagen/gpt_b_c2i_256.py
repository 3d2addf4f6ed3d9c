# LlamaGen GPT-B, class-conditional ImageNet at 256 px (Sun et al. 2024,
# arXiv 2406.06525): 12 layers, width 768, 12 heads, one linear output layer
# over the 16x16 tokens of vq_ds16_c2i (16384 codes). The released
# c2i_B_256.pt (FoundationVision/LlamaGen) is model-index entry
# llamagen_gpt_b_c2i_256 (docs/zoo.md); training it again takes LlamaGen's
# recipe (configs/_base_/schedules/far_300e.py) on ten-crop codes of
# vq_ds16_c2i (tools/extract_codes.py).
_base_ = [
    '../_base_/models/gpt_b.py',
    '../_base_/datasets/imagenet_codes.py',
    '../_base_/schedules/far_300e.py',
    '../_base_/generator_runtime.py',
]
model = dict(grid_size=(16, 16), codebook_sizes=[16384])
train_dataloader = dict(
    dataset=dict(data_root='data/imagenet_codes/vq_ds16_c2i_256/train'))
