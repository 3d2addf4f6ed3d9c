"""The LlamaGen transformer shared by the released class-conditional GPTs
(FoundationVision/LlamaGen ``autoregressive/models/gpt.py``) and FQGAN's FAR
(showlab/FQGAN ``autoregressive/models/far_dual.py`` / ``far_triple.py``):
block parameters, what the shapes tell, the fqzoo generator config.

Both are :class:`~fqzoo.models.generators.AutoregressiveGenerator` models
whose blocks keep their released parameter names, so converting renames
prefixes (:func:`gpt_key_table`):

=========================================  ===================================
released                                   fqzoo
=========================================  ===================================
cls_embedding.embedding_table.weight       class_embed.weight
tok_embeddings.weight (LlamaGen)           token_embed.tables.0.weight
tok_embeddings_<g+1>.weight (FAR)          token_embed.tables.<g>.weight
aggregation_layer.{weight,bias} (FAR)      token_embed.proj.{weight,bias}
layers.<n>.<block param>                   backbone.stack.blocks.<n>.<param>
ar_head.<n>.<block param> (FAR)            head.stack.blocks.<n>.<param>
norm.weight                                head.norm.weight
output.weight (LlamaGen)                   head.outputs.0.weight
output_<g+1>.weight (FAR)                  head.outputs.<g>.weight
=========================================  ===================================

Block parameters: ``attention.wqkv.weight``, ``attention.wo.weight``,
``feed_forward.w{1,2,3}.weight``, ``attention_norm.weight``,
``ffn_norm.weight``. KV caches, rotary tables and causal masks saved by the
released code are dropped. What the tensors do not tell (the number of
attention heads, the token grid) comes from the caller; everything else
(depth, width, vocabularies, classes, SwiGLU width, key/value heads, head
depth) is read from the shapes.
"""
import re
from typing import Dict, List, Mapping, Optional, Tuple

from torch import Tensor

from .keys import KeyTable, count_indexed, tensor

# Attention heads of the released class-conditional sizes, by width:
# GPT-B 768, GPT-L / FAR-B 1024, GPT-XL / FAR-L 1280, GPT-XXL 1536,
# GPT-XXXL 2560.
# LlamaGen's autoregressive/models/gpt.py: GPT-B, L, XL, XXL, 1B, XXXL, 3B, 7B.
RELEASED_NUM_HEADS = {768: 12, 1024: 16, 1280: 20, 1536: 24, 2048: 32,
                      2560: 40, 3200: 32, 4096: 32}
# The released training defaults (train_c2i*.py: --dropout-p and
# --token-dropout-p 0.1, attention dropout 0, class dropout 0.1).
RELEASED_DROPOUTS = dict(attn_dropout=0.0, resid_dropout=0.1, ffn_dropout=0.1)
RELEASED_TOKEN_DROPOUT = 0.1
RELEASED_CLASS_DROPOUT = 0.1

BLOCK_PARAMS = ('attention.wqkv.weight', 'attention.wo.weight',
                'feed_forward.w1.weight', 'feed_forward.w2.weight',
                'feed_forward.w3.weight', 'attention_norm.weight',
                'ffn_norm.weight')
# Saved by the released code but not weights: KV caches (after sampling),
# the rotary table and the causal mask (when made buffers by a fork).
DROPPED = (r'(.+\.)?(freqs_cis|causal_mask)', r'(.+\.)?kv_cache\.[kv]_cache')
_SUB = r'[1-9]\d*'  # released sub-token numbers start at 1
TOKEN_TABLE = 'tok_embeddings.weight'
SUB_TOKEN_TABLE = rf'tok_embeddings_({_SUB})\.weight'


def dropped_keys(state: Mapping[str, Tensor]) -> List[str]:
    """The released keys that are caches or rotary tables, not weights."""
    return [k for k in state if any(re.fullmatch(p, k) for p in DROPPED)]


def gpt_key_table(family: str, num_sub_tokens: int = 1) -> KeyTable:
    """The key table of a LlamaGen GPT (``family='llamagen'``) or a FAR
    model of ``num_sub_tokens`` sub-tokens (``'far'``)."""
    rules = [('cls_embedding.embedding_table.weight', 'class_embed.weight'),
             ('layers.{n}.{block}', 'backbone.stack.blocks.{n}.{block}'),
             ('norm.weight', 'head.norm.weight')]
    if family == 'llamagen':
        rules += [(TOKEN_TABLE, 'token_embed.tables.0.weight'),
                  ('output.weight', 'head.outputs.0.weight')]
    else:
        for g in range(num_sub_tokens):
            rules += [(f'tok_embeddings_{g + 1}.weight',
                       f'token_embed.tables.{g}.weight'),
                      (f'output_{g + 1}.weight', f'head.outputs.{g}.weight')]
        rules += [('aggregation_layer.{wb}', 'token_embed.proj.{wb}'),
                  ('ar_head.{n}.{block}', 'head.stack.blocks.{n}.{block}')]
    name = ('LlamaGen class-conditional GPT' if family == 'llamagen' else
            f'FAR ({num_sub_tokens} sub-tokens)')
    return KeyTable(name, rules, dropped=DROPPED, fields=dict(
        block='|'.join(re.escape(p) for p in BLOCK_PARAMS),
        wb='weight|bias'))


def released_shapes(arch: dict) -> Dict[str, Tuple[int, ...]]:
    """Every released key of the model ``arch`` describes
    (:func:`infer_architecture`), with its shape."""
    width, sizes = arch['width'], arch['codebook_sizes']
    head_dim = width // arch['num_heads']

    def block(prefix: str, name: str = '') -> Dict[str, Tuple[int, ...]]:
        qkv = width + 2 * arch[f'{name}num_kv_heads'] * head_dim
        hidden = arch[f'{name}ffn_hidden_dim']
        shapes = dict(zip(BLOCK_PARAMS, [
            (qkv, width), (width, width), (hidden, width), (width, hidden),
            (hidden, width), (width,), (width,)]))
        return {f'{prefix}.{k}': v for k, v in shapes.items()}

    shapes = {'cls_embedding.embedding_table.weight':
              (arch['num_classes'] + 1, width), 'norm.weight': (width,)}
    if arch['family'] == 'llamagen':
        shapes[TOKEN_TABLE] = (sizes[0], width)
        shapes['output.weight'] = (sizes[0], width)
    else:
        for g, size in enumerate(sizes, 1):
            shapes[f'tok_embeddings_{g}.weight'] = (size, width)
            shapes[f'output_{g}.weight'] = (size, width)
        shapes['aggregation_layer.weight'] = (width, len(sizes) * width)
        shapes['aggregation_layer.bias'] = (width,)
        for n in range(arch['head_layers']):
            shapes.update(block(f'ar_head.{n}', 'head_'))
    for n in range(arch['num_layers']):
        shapes.update(block(f'layers.{n}'))
    return shapes


def _kv_heads(wqkv: Tensor, key: str, width: int, num_heads: int) -> int:
    head_dim = width // num_heads
    rows = wqkv.shape[0] - width
    if rows <= 0 or rows % (2 * head_dim) or num_heads % (
            rows // (2 * head_dim)):
        raise ValueError(f'"{key}" has shape {tuple(wqkv.shape)}: not (num '
                         f'heads + 2 kv heads) x head dim {head_dim} rows '
                         f'for width {width} and {num_heads} heads (wrong '
                         '--num-heads?)')
    return rows // (2 * head_dim)


def infer_architecture(state: Mapping[str, Tensor], family: str,
                       num_heads: Optional[int] = None) -> dict:
    """What the shapes of a released state dict (prefixes stripped) tell.

    Args:
        state (Mapping): released keys -> tensors.
        family (str): ``'llamagen'`` or ``'far'``.
        num_heads (int, optional): attention heads. Defaults to None (the
            released size of the width, :data:`RELEASED_NUM_HEADS`).

    Returns:
        dict: ``family``, ``width``, ``num_layers``, ``num_heads``,
        ``num_kv_heads``, ``ffn_hidden_dim``, ``codebook_sizes``,
        ``num_classes`` and, for FAR, ``head_layers``,
        ``head_num_kv_heads``, ``head_ffn_hidden_dim``.
    """
    classes = tensor(state, 'cls_embedding.embedding_table.weight',
                     'the class count and the width', 2)
    width = classes.shape[1]
    if num_heads is None:
        if width not in RELEASED_NUM_HEADS:
            raise ValueError(f'Width {width} ("cls_embedding.embedding_table'
                             f'.weight" {tuple(classes.shape)}) is none of '
                             f'the released sizes {RELEASED_NUM_HEADS}: '
                             'pass --num-heads')
        num_heads = RELEASED_NUM_HEADS[width]
    if num_heads < 1 or width % num_heads or (width // num_heads) % 4:
        raise ValueError(f'{num_heads} heads do not split width {width} '
                         'into heads of a multiple of 4 channels')
    if family == 'llamagen':
        tables = [TOKEN_TABLE]
    else:
        tables = [f'tok_embeddings_{g}.weight' for g in
                  range(1, count_indexed(state, SUB_TOKEN_TABLE))]
    sizes = [tensor(state, t, 'the vocabulary size', 2).shape[0]
             for t in tables]
    arch = dict(family=family, width=width,
                num_layers=count_indexed(state, r'layers\.(\d+)\..*'),
                num_heads=num_heads, codebook_sizes=sizes,
                num_classes=classes.shape[0] - 1)
    if arch['num_layers'] == 0:
        raise KeyError('Missing key "layers.0.attention.wqkv.weight": no '
                       'transformer blocks')
    blocks = [('layers', '')]
    if family == 'far':
        arch['head_layers'] = count_indexed(state, r'ar_head\.(\d+)\..*')
        if arch['head_layers'] == 0:
            raise KeyError('Missing key "ar_head.0.attention.wqkv.weight": '
                           'no FAR head blocks')
        blocks.append(('ar_head', 'head_'))
    for prefix, name in blocks:
        qkv = f'{prefix}.0.attention.wqkv.weight'
        arch[f'{name}num_kv_heads'] = _kv_heads(
            tensor(state, qkv, 'the key/value heads', 2), qkv, width,
            num_heads)
        arch[f'{name}ffn_hidden_dim'] = tensor(
            state, f'{prefix}.0.feed_forward.w1.weight',
            'the SwiGLU width', 2).shape[0]
    return arch


def generator_config(arch: dict, grid_size: int) -> dict:
    """The ``model`` config of the fqzoo generator (released training
    dropouts)."""
    def block_cfg(name: str = '') -> dict:
        cfg = dict(num_heads=arch['num_heads'])
        if arch[f'{name}num_kv_heads'] != arch['num_heads']:
            cfg['num_kv_heads'] = arch[f'{name}num_kv_heads']
        cfg['ffn_hidden_dim'] = arch[f'{name}ffn_hidden_dim']
        return dict(cfg, **RELEASED_DROPOUTS)

    backbone = dict(type='LlamaGenBackbone', width=arch['width'],
                    num_layers=arch['num_layers'], **block_cfg(),
                    token_dropout=RELEASED_TOKEN_DROPOUT)
    if arch['family'] == 'llamagen':
        head = dict(type='ParallelLinearHead')
    else:
        head = dict(type='FactorizedARHead', num_layers=arch['head_layers'],
                    **block_cfg('head_'))
    return dict(type='AutoregressiveGenerator', backbone=backbone,
                head=head, num_classes=arch['num_classes'],
                token_embed=dict(type='FactorizedTokenEmbedding'),
                class_dropout=RELEASED_CLASS_DROPOUT,
                grid_size=(grid_size, grid_size),
                codebook_sizes=list(arch['codebook_sizes']))


def convert_transformer(state: Mapping[str, Tensor], family: str, *,
                        num_heads: Optional[int] = None,
                        grid_size: int = 16
                        ) -> Tuple[Dict[str, Tensor], dict]:
    """``(fqzoo state dict, generator model config)`` of a released
    LlamaGen GPT or FAR state dict (prefixes stripped), every key and shape
    checked against the model the shapes describe.

    Raises:
        KeyError: a missing or unexpected key (named).
        ValueError: a shape that does not fit, heads that do not split the
            width, or ``grid_size < 1``.
    """
    if grid_size < 1:
        raise ValueError(f'grid_size must be >= 1, got {grid_size}')
    arch = infer_architecture(state, family, num_heads)
    table = gpt_key_table(family, len(arch['codebook_sizes']))
    expected = released_shapes(arch)
    dropped = set(dropped_keys(state))
    missing = [k for k in expected if k not in state]
    if missing:
        raise KeyError(f'Missing key "{missing[0]}" ({len(missing)} missing '
                       f'in all: {missing[:6]})')
    extra = [k for k in state if k not in expected and k not in dropped]
    if extra:
        raise KeyError(f'Unexpected key "{extra[0]}" for a {family} model '
                       f'of {len(arch["codebook_sizes"])} sub-token(s) '
                       f'({len(extra)} unexpected in all: {extra[:6]})')
    for key, shape in expected.items():
        if tuple(state[key].shape) != shape:
            raise ValueError(f'"{key}" has shape {tuple(state[key].shape)}, '
                             f'the model inferred from the checkpoint '
                             f'expects {shape}')
    weights, _ = table.convert(state)
    return weights, generator_config(arch, grid_size)
