"""Synthetic checkpoints in LlamaGen's released layouts, at tiny sizes.

The key names and shapes are written here from the released modules'
structure (FoundationVision/LlamaGen ``tokenizer/tokenizer_image/
vq_model.py``: ``VQModel`` with ``Encoder``, ``Decoder``,
``VectorQuantizer``, ``quant_conv``, ``post_quant_conv``;
``autoregressive/models/gpt.py``: ``Transformer``), never taken from the
converter. ``tools/dev/compare_llamagen_vq.py`` loads them into the released
models with ``load_state_dict(strict=True)`` (so they are exactly the
released layout) and records the released outputs in
``llamagen_released.pt`` beside this file.
"""
from typing import Dict, Tuple

import torch

# The released VQModel at a width its GroupNorm(32) allows: two levels
# (downsample 2), one residual block per level, 16 latent channels, 64
# codes of 8 dimensions; 16x16 images give 8x8 tokens.
VQ = dict(ch=32, ch_mult=(1, 2), num_res_blocks=1, z_channels=16,
          codebook_size=64, embed_dim=8)
IMAGE_SIZE = 16
GRID = 8
# The released c2i Transformer over those 8x8 tokens: width 32, 4 heads,
# SwiGLU width find_multiple(int(2 * 4 * 32 / 3), 16) = 96.
GPT = dict(dim=32, n_layer=2, n_head=4, multiple_of=16, ffn=96,
           vocab_size=64, num_classes=5)

Shapes = Dict[str, Tuple[int, ...]]


def _conv(shapes: Shapes, name: str, cin: int, cout: int, k: int) -> None:
    shapes[f'{name}.weight'] = (cout, cin, k, k)
    shapes[f'{name}.bias'] = (cout,)


def _norm(shapes: Shapes, name: str, channels: int) -> None:
    shapes[f'{name}.weight'] = (channels,)
    shapes[f'{name}.bias'] = (channels,)


def _res(shapes: Shapes, name: str, cin: int, cout: int) -> None:
    """ResnetBlock: norm1, conv1, norm2, conv2 (+ nin_shortcut)."""
    _norm(shapes, f'{name}.norm1', cin)
    _conv(shapes, f'{name}.conv1', cin, cout, 3)
    _norm(shapes, f'{name}.norm2', cout)
    _conv(shapes, f'{name}.conv2', cout, cout, 3)
    if cin != cout:
        _conv(shapes, f'{name}.nin_shortcut', cin, cout, 1)


def _attn(shapes: Shapes, name: str, channels: int) -> None:
    """AttnBlock: norm, q, k, v, proj_out (1x1 convs)."""
    _norm(shapes, f'{name}.norm', channels)
    for part in ('q', 'k', 'v', 'proj_out'):
        _conv(shapes, f'{name}.{part}', channels, channels, 1)


def _mid(shapes: Shapes, prefix: str, channels: int) -> None:
    _res(shapes, f'{prefix}.mid.0', channels, channels)
    _attn(shapes, f'{prefix}.mid.1', channels)
    _res(shapes, f'{prefix}.mid.2', channels, channels)


def vq_shapes(ch: int, ch_mult: Tuple[int, ...], num_res_blocks: int,
              z_channels: int, codebook_size: int, embed_dim: int,
              in_channels: int = 3) -> Shapes:
    """Every key of LlamaGen's ``VQModel`` state dict, with its shape."""
    shapes: Shapes = {}
    last = len(ch_mult) - 1
    _conv(shapes, 'encoder.conv_in', in_channels, ch, 3)
    block_in = ch
    for level, mult in enumerate(ch_mult):
        block_in, block_out = ch * ((1,) + tuple(ch_mult))[level], ch * mult
        for i in range(num_res_blocks):
            _res(shapes, f'encoder.conv_blocks.{level}.res.{i}', block_in,
                 block_out)
            block_in = block_out
            if level == last:
                _attn(shapes, f'encoder.conv_blocks.{level}.attn.{i}',
                      block_in)
        if level != last:
            _conv(shapes, f'encoder.conv_blocks.{level}.downsample.conv',
                  block_in, block_in, 3)
    _mid(shapes, 'encoder', block_in)
    _norm(shapes, 'encoder.norm_out', block_in)
    _conv(shapes, 'encoder.conv_out', block_in, z_channels, 3)

    block_in = ch * ch_mult[-1]
    _conv(shapes, 'decoder.conv_in', z_channels, block_in, 3)
    _mid(shapes, 'decoder', block_in)
    for i, level in enumerate(reversed(range(len(ch_mult)))):
        block_out = ch * ch_mult[level]
        for j in range(num_res_blocks + 1):
            _res(shapes, f'decoder.conv_blocks.{i}.res.{j}', block_in,
                 block_out)
            block_in = block_out
            if level == last:
                _attn(shapes, f'decoder.conv_blocks.{i}.attn.{j}', block_in)
        if level != 0:
            _conv(shapes, f'decoder.conv_blocks.{i}.upsample.conv',
                  block_in, block_in, 3)
    _norm(shapes, 'decoder.norm_out', block_in)
    _conv(shapes, 'decoder.conv_out', block_in, 3, 3)

    shapes['quantize.embedding.weight'] = (codebook_size, embed_dim)
    shapes['quantize.codebook_used'] = (65536,)
    _conv(shapes, 'quant_conv', z_channels, embed_dim, 1)
    _conv(shapes, 'post_quant_conv', embed_dim, z_channels, 1)
    return shapes


def gpt_shapes(dim: int, n_layer: int, n_head: int, ffn: int,
               vocab_size: int, num_classes: int, **_) -> Shapes:
    """Every key of LlamaGen's c2i ``Transformer`` state dict (label
    dropout on: a null-class row), with its shape."""
    shapes: Shapes = {
        'tok_embeddings.weight': (vocab_size, dim),
        'cls_embedding.embedding_table.weight': (num_classes + 1, dim)}
    for n in range(n_layer):
        shapes.update({
            f'layers.{n}.attention.wqkv.weight': (3 * dim, dim),
            f'layers.{n}.attention.wo.weight': (dim, dim),
            f'layers.{n}.feed_forward.w1.weight': (ffn, dim),
            f'layers.{n}.feed_forward.w2.weight': (dim, ffn),
            f'layers.{n}.feed_forward.w3.weight': (ffn, dim),
            f'layers.{n}.attention_norm.weight': (dim,),
            f'layers.{n}.ffn_norm.weight': (dim,)})
    shapes['norm.weight'] = (dim,)
    shapes['output.weight'] = (vocab_size, dim)
    return shapes


def random_state(shapes: Shapes, seed: int) -> Dict[str, torch.Tensor]:
    """Weights that keep activations of order one: convolutions and linear
    layers N(0, 1 / fan in), norm scales 1 + N(0, 0.1^2), biases and norm
    shifts N(0, 0.1^2), embeddings and codes N(0, 1), the usage log 0."""
    rng = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        noise = torch.randn(shape, generator=rng)
        if key.endswith('codebook_used'):
            value = torch.zeros(shape)
        elif len(shape) > 1 and 'embed' not in key:
            fan_in = 1
            for size in shape[1:]:
                fan_in *= size
            value = noise / fan_in ** 0.5
        elif len(shape) > 1:
            value = noise
        elif 'norm' in key and key.endswith('weight'):
            value = 1 + 0.1 * noise
        else:
            value = 0.1 * noise
        state[key] = value
    return state


def vq_state(seed: int = 0) -> Dict[str, torch.Tensor]:
    """The tiny LlamaGen VQ state dict of :data:`VQ`."""
    return random_state(vq_shapes(**VQ), seed)


def gpt_state(seed: int = 1) -> Dict[str, torch.Tensor]:
    """The tiny LlamaGen c2i GPT state dict of :data:`GPT`."""
    return random_state(gpt_shapes(**GPT), seed)


def images(seed: int = 2, batch: int = 3) -> torch.Tensor:
    """Smooth random images in [-1, 1] (a coarse random field upsampled,
    so neighbouring pixels correlate as in photos)."""
    rng = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, 4, 4, generator=rng) * 2 - 1
    fine = torch.nn.functional.interpolate(coarse, size=IMAGE_SIZE,
                                           mode='bilinear',
                                           align_corners=False)
    noise = 0.1 * torch.randn(fine.shape, generator=rng)
    return (fine + noise).clamp(-1, 1)
