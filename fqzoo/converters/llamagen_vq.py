"""LlamaGen's released VQ tokenizers (Sun et al., 2024, arXiv 2406.06525;
FoundationVision/LlamaGen ``tokenizer/tokenizer_image/vq_model.py``:
``vq_ds16_c2i.pt``, ``vq_ds8_c2i.pt``, ``vq_ds16_t2i.pt``) as fqzoo
``ImageTokenizer`` models: a ``VQGANEncoder``, one 1x1 ``quant_convs.0``, a
``VectorQuantizer`` with an l2-normalised codebook and a ``VQGANDecoder``.

LlamaGen's ``Encoder`` / ``Decoder`` are the VQGAN trunks fqzoo's are
(residual blocks with GroupNorm(32, eps 1e-6) and SiLU, single-head
attention at the lowest resolution and in the middle, downsampling by a
stride-2 conv after (0, 1, 0, 1) padding, nearest upsampling and a 3x3
conv), under the same parameter names, so only three prefixes change
(:func:`llamagen_vq_key_table`):

================================  ====================================
released                          fqzoo
================================  ====================================
encoder.*, decoder.*              unchanged
quant_conv.{weight,bias}          quant_convs.0.{weight,bias}
quantize.embedding.weight         quantizer.embedding.weight
quantize.codebook_used            (dropped: a usage log)
post_quant_conv.{weight,bias}     unchanged
================================  ====================================

Everything is read from the shapes: base width, width multipliers per
level (``VQ-16``: ``[1, 1, 2, 2, 4]``, downsample 16; ``VQ-8``:
``[1, 2, 2, 4]``, downsample 8), residual blocks per level, ``z_channels``
(256), codebook size (16384) and code dimension (8). The codebook is
l2-normalised (``codebook_l2_norm=True``, the default of every released
model, which the weights do not record), as is the encoder output before
the nearest-code search.
"""
from typing import Dict, List, Mapping, Optional, Tuple

from torch import Tensor

from .family import ConverterFamily
from .keys import KeyTable, count_indexed, tensor
from .model import build_model, check_state

DROPPED = [r'quantize\.codebook_used']
CODEBOOK = 'quantize.embedding.weight'
# The fqzoo-only settings of the released training (vq_train.py defaults):
# commitment weight 0.25, no entropy loss.
RELEASED_BETA = 0.25
IMAGE_SIZE = 256


def llamagen_vq_key_table() -> KeyTable:
    """The key table of a released LlamaGen VQ model."""
    return KeyTable('LlamaGen VQ', [
        ('quant_conv.{rest}', 'quant_convs.0.{rest}'),
        (CODEBOOK, 'quantizer.embedding.weight'),
        ('encoder.{rest}', 'encoder.{rest}'),
        ('decoder.{rest}', 'decoder.{rest}'),
        ('post_quant_conv.{rest}', 'post_quant_conv.{rest}'),
    ], dropped=DROPPED)


def _levels(state: Mapping[str, Tensor], part: str) -> int:
    levels = count_indexed(state, part + r'\.conv_blocks\.(\d+)\..*')
    if levels == 0:
        raise KeyError(f'Missing key "{part}.conv_blocks.0.res.0.conv1.'
                       f'weight": no {part} levels')
    return levels


def detect_llamagen_vq(state: Mapping[str, Tensor]) -> Optional[str]:
    """``'ds16'`` / ``'ds8'`` (``'ds<f>'``) for a LlamaGen VQ state dict
    (``quantize.embedding.weight`` and ``quant_conv.weight``), else None."""
    if CODEBOOK not in state or 'quant_conv.weight' not in state:
        return None
    levels = count_indexed(state, r'encoder\.conv_blocks\.(\d+)\..*')
    return f'ds{2 ** (levels - 1)}' if levels else 'vq'


def _widths(state: Mapping[str, Tensor], part: str, ch: int
            ) -> List[int]:
    """Width multiplier of each level (the decoder's listed from the
    lowest resolution up, as its ``conv_blocks``)."""
    mults = []
    for level in range(_levels(state, part)):
        key = f'{part}.conv_blocks.{level}.res.0.conv1.weight'
        width = tensor(state, key, f'the width of {part} level {level}',
                       4).shape[0]
        if width % ch:
            raise ValueError(f'"{key}" has {width} output channels, not a '
                             f'multiple of the base width {ch} '
                             '("encoder.conv_in.weight")')
        mults.append(width // ch)
    return mults


def infer_architecture(state: Mapping[str, Tensor]) -> dict:
    """What the shapes of a released LlamaGen VQ state dict tell:
    ``in_channels``, ``ch``, ``ch_mult``, ``num_res_blocks``,
    ``z_channels``, ``decoder_ch_mult``, ``decoder_num_res_blocks``,
    ``out_channels``, ``codebook_size``, ``embed_dim``.

    Raises:
        KeyError: a key it needs is missing (named).
        ValueError: a tensor of another rank, or widths that are not
            multiples of the base width.
    """
    conv_in = tensor(state, 'encoder.conv_in.weight', 'the base width', 4)
    ch = conv_in.shape[0]
    codebook = tensor(state, CODEBOOK, 'the codebook size', 2)
    return dict(
        in_channels=conv_in.shape[1], ch=ch,
        ch_mult=_widths(state, 'encoder', ch),
        num_res_blocks=count_indexed(
            state, r'encoder\.conv_blocks\.0\.res\.(\d+)\..*'),
        z_channels=tensor(state, 'encoder.conv_out.weight',
                          'z_channels', 4).shape[0],
        decoder_ch_mult=_widths(state, 'decoder', ch)[::-1],
        decoder_num_res_blocks=count_indexed(
            state, r'decoder\.conv_blocks\.0\.res\.(\d+)\..*') - 1,
        out_channels=tensor(state, 'decoder.conv_out.weight',
                            'the image channels', 4).shape[0],
        codebook_size=codebook.shape[0], embed_dim=codebook.shape[1])


def tokenizer_config(arch: dict) -> dict:
    """The ``model`` config of the fqzoo tokenizer (inference: no
    discriminator, no perceptual loss)."""
    return dict(
        type='ImageTokenizer',
        encoder=dict(type='VQGANEncoder', in_channels=arch['in_channels'],
                     ch=arch['ch'], ch_mult=tuple(arch['ch_mult']),
                     num_res_blocks=arch['num_res_blocks'],
                     z_channels=arch['z_channels']),
        decoder=dict(type='VQGANDecoder', out_channels=arch['out_channels'],
                     ch=arch['ch'], ch_mult=tuple(arch['decoder_ch_mult']),
                     num_res_blocks=arch['decoder_num_res_blocks'],
                     z_channels=arch['z_channels']),
        quantizer=dict(type='VectorQuantizer',
                       codebook_size=arch['codebook_size'],
                       embed_dim=arch['embed_dim'], l2_norm=True,
                       beta=RELEASED_BETA),
        discriminator=None, perceptual_loss=None)


def convert_llamagen_vq(state: Mapping[str, Tensor]
                        ) -> Tuple[Dict[str, Tensor], dict]:
    """``(fqzoo state dict, tokenizer model config)`` of a released
    LlamaGen VQ state dict (``module.`` / ``_orig_mod.`` prefixes
    stripped).

    Returns:
        tuple[dict, dict]: the weights under fqzoo's keys (the usage
        buffers fqzoo adds are not among them) and the model config.

    Raises:
        KeyError: not a LlamaGen VQ state dict, a key no rule maps, a
            parameter missing.
        ValueError: a shape that does not fit the model the shapes
            describe.
    """
    if detect_llamagen_vq(state) is None:
        raise KeyError(f'Missing key "{CODEBOOK}" with "quant_conv.weight":'
                       ' not a released LlamaGen VQ tokenizer')
    model_cfg = tokenizer_config(infer_architecture(state))
    table = llamagen_vq_key_table()
    weights, _ = table.convert(state)
    check_state(weights, build_model(model_cfg), table.name,
                table.to_released)
    return weights, model_cfg


def dropped_keys(state: Mapping[str, Tensor]) -> List[str]:
    """The released usage buffer (``quantize.codebook_used``)."""
    table = llamagen_vq_key_table()
    return [k for k in state if table.is_dropped(k)]


FAMILY = ConverterFamily(
    name='llamagen_vq', kind='tokenizer', origin='FoundationVision/LlamaGen',
    tool='tools/convert/llamagen_vq.py',
    signature=f'"{CODEBOOK}" with "quant_conv.weight" (LlamaGen VQ)',
    detect=detect_llamagen_vq, convert=convert_llamagen_vq,
    dropped=dropped_keys, image_sizes=lambda model_cfg: [IMAGE_SIZE])
