"""The VQGAN / LlamaGen conv trunks written out with torch functional ops.

Parameters are read from a plain ``{name: tensor}`` mapping by their key
names, which are those of the released LlamaGen / FQGAN checkpoints
(``conv_in``, ``conv_blocks.<level>.res.<i>.norm1`` ..., ``mid.0/1/2``,
``norm_out``, ``conv_out``), under an optional ``prefix`` (``'encoder.'``).
The reference that fqzoo's ``VQGANEncoder`` / ``VQGANTrunk`` /
``VQGANDecoder`` and the converted released checkpoints are checked
against: nothing here calls an fqzoo module.
"""
import math
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

Params = Mapping[str, Tensor]


def conv(x: Tensor, p: Params, name: str, **kwargs) -> Tensor:
    """``F.conv2d`` with ``name.weight`` and ``name.bias``."""
    return F.conv2d(x, p[f'{name}.weight'], p[f'{name}.bias'], **kwargs)


def norm(x: Tensor, p: Params, name: str, groups: int) -> Tensor:
    """GroupNorm (eps 1e-6) with ``name.weight`` and ``name.bias``."""
    return F.group_norm(x, groups, p[f'{name}.weight'], p[f'{name}.bias'],
                        eps=1e-6)


def resnet_block(x: Tensor, p: Params, name: str, groups: int) -> Tensor:
    """norm, SiLU, 3x3 conv twice, plus the (1x1 ``nin_shortcut``) input."""
    h = conv(F.silu(norm(x, p, f'{name}.norm1', groups)), p,
             f'{name}.conv1', padding=1)
    h = conv(F.silu(norm(h, p, f'{name}.norm2', groups)), p,
             f'{name}.conv2', padding=1)
    if f'{name}.nin_shortcut.weight' in p:
        x = conv(x, p, f'{name}.nin_shortcut')
    return x + h


def attention_block(x: Tensor, p: Params, name: str, groups: int) -> Tensor:
    """One-head attention: softmax(q^T k / sqrt(c)) over positions."""
    b, c, height, width = x.shape
    y = norm(x, p, f'{name}.norm', groups)
    q, k, v = (conv(y, p, f'{name}.{m}').reshape(b, c, -1) for m in 'qkv')
    weights = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(c), dim=-1)
    out = (v @ weights.transpose(1, 2)).reshape(b, c, height, width)
    return x + conv(out, p, f'{name}.proj_out')


def middle(h: Tensor, p: Params, prefix: str, groups: int) -> Tensor:
    """``mid.0`` (resnet), ``mid.1`` (attention), ``mid.2`` (resnet)."""
    h = resnet_block(h, p, f'{prefix}mid.0', groups)
    h = attention_block(h, p, f'{prefix}mid.1', groups)
    return resnet_block(h, p, f'{prefix}mid.2', groups)


def encoder_trunk(x: Tensor, p: Params, levels: int, blocks: int,
                  groups: int, prefix: str = '') -> Tensor:
    """``conv_in``, the levels (attention after each block of the last;
    between levels a stride-2 3x3 conv padded on the right and bottom
    only) and the middle: the encoder up to its output norm."""
    h = conv(x, p, f'{prefix}conv_in', padding=1)
    for level in range(levels):
        last = level == levels - 1
        for i in range(blocks):
            h = resnet_block(h, p, f'{prefix}conv_blocks.{level}.res.{i}',
                             groups)
            if last:
                h = attention_block(
                    h, p, f'{prefix}conv_blocks.{level}.attn.{i}', groups)
        if not last:
            h = conv(F.pad(h, (0, 1, 0, 1)), p,
                     f'{prefix}conv_blocks.{level}.downsample.conv', stride=2)
    return middle(h, p, prefix, groups)


def encoder(x: Tensor, p: Params, levels: int, blocks: int, groups: int,
            prefix: str = '') -> Tensor:
    """:func:`encoder_trunk`, then ``norm_out``, SiLU and ``conv_out``."""
    h = encoder_trunk(x, p, levels, blocks, groups, prefix)
    return conv(F.silu(norm(h, p, f'{prefix}norm_out', groups)), p,
                f'{prefix}conv_out', padding=1)


def decoder(z: Tensor, p: Params, levels: int, blocks: int, groups: int,
            prefix: str = '') -> Tensor:
    """``conv_in``, the middle, the levels from the widest (``blocks + 1``
    resnets each, attention after each of level 0's; between levels
    nearest x2 then a 3x3 conv), ``norm_out``, SiLU, ``conv_out``."""
    h = middle(conv(z, p, f'{prefix}conv_in', padding=1), p, prefix, groups)
    for level in range(levels):
        for i in range(blocks + 1):
            h = resnet_block(h, p, f'{prefix}conv_blocks.{level}.res.{i}',
                             groups)
            if level == 0:
                h = attention_block(
                    h, p, f'{prefix}conv_blocks.{level}.attn.{i}', groups)
        if level != levels - 1:
            h = h.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
            h = conv(h, p, f'{prefix}conv_blocks.{level}.upsample.conv',
                     padding=1)
    return conv(F.silu(norm(h, p, f'{prefix}norm_out', groups)), p,
                f'{prefix}conv_out', padding=1)
