"""Released LlamaGen / FAR generator checkpoints as fqzoo generators.

The class-conditional GPTs of LlamaGen (Sun et al., 2024, arXiv 2406.06525;
FoundationVision/LlamaGen ``autoregressive/models/gpt.py``: GPT-B ... XXXL)
and the FAR transformers of FQGAN (Bai et al., 2024, arXiv 2411.16681;
showlab/FQGAN ``autoregressive/models/far_dual.py`` / ``far_triple.py``) are
:class:`~fqzoo.models.generators.AutoregressiveGenerator` models with G = 1
and a ``ParallelLinearHead``, or G = 2 / 3 and a ``FactorizedARHead``. The
block parameters keep their released names, so converting renames prefixes:

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
``ffn_norm.weight``. FAR's sub-token order is kept: released ``idx_1`` (the
visual branch) is fqzoo sub-token 0. KV caches, rotary tables and causal
masks saved by the released code are dropped; ``module.`` / ``_orig_mod.``
prefixes (DDP, ``torch.compile``) are stripped.

What the tensors do not tell (the number of attention heads, the token grid)
comes from the caller; everything else (depth, width, vocabularies, classes,
SwiGLU width, key/value heads, head depth) is read from the shapes.
"""
import argparse
import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor

from fqzoo.utils.checkpoint import safe_load
from fqzoo.utils.files import file_sha256

FAMILIES = {
    'llamagen': dict(origin='FoundationVision/LlamaGen',
                     tool='tools/convert/llamagen_gpt.py'),
    'far': dict(origin='showlab/FQGAN', tool='tools/convert/official_far.py'),
}
# Attention heads of the released class-conditional sizes, by width:
# GPT-B 768, GPT-L / FAR-B 1024, GPT-XL / FAR-L 1280, GPT-XXL 1536,
# GPT-XXXL 2560.
RELEASED_NUM_HEADS = {768: 12, 1024: 16, 1280: 20, 1536: 24, 2560: 40}
# The released training defaults (train_c2i*.py: --dropout-p and
# --token-dropout-p 0.1, attention dropout 0, class dropout 0.1).
RELEASED_DROPOUTS = dict(attn_dropout=0.0, resid_dropout=0.1, ffn_dropout=0.1)
RELEASED_TOKEN_DROPOUT = 0.1
RELEASED_CLASS_DROPOUT = 0.1

BLOCK_PARAMS = ('attention.wqkv.weight', 'attention.wo.weight',
                'feed_forward.w1.weight', 'feed_forward.w2.weight',
                'feed_forward.w3.weight', 'attention_norm.weight',
                'ffn_norm.weight')
_BLOCK = '|'.join(re.escape(p) for p in BLOCK_PARAMS)
_SUB = r'([1-9]\d*)'  # released sub-token numbers start at 1
KEY_RULES: List[Tuple[re.Pattern, Callable[[re.Match], str]]] = [
    (re.compile(r'cls_embedding\.embedding_table\.weight'),
     lambda m: 'class_embed.weight'),
    (re.compile(r'tok_embeddings\.weight'),
     lambda m: 'token_embed.tables.0.weight'),
    (re.compile(rf'tok_embeddings_{_SUB}\.weight'),
     lambda m: f'token_embed.tables.{int(m[1]) - 1}.weight'),
    (re.compile(r'aggregation_layer\.(weight|bias)'),
     lambda m: f'token_embed.proj.{m[1]}'),
    (re.compile(rf'layers\.(\d+)\.({_BLOCK})'),
     lambda m: f'backbone.stack.blocks.{m[1]}.{m[2]}'),
    (re.compile(rf'ar_head\.(\d+)\.({_BLOCK})'),
     lambda m: f'head.stack.blocks.{m[1]}.{m[2]}'),
    (re.compile(r'norm\.weight'), lambda m: 'head.norm.weight'),
    (re.compile(r'output\.weight'), lambda m: 'head.outputs.0.weight'),
    (re.compile(rf'output_{_SUB}\.weight'),
     lambda m: f'head.outputs.{int(m[1]) - 1}.weight'),
]
# Saved by the released code but not weights: KV caches (after sampling),
# the rotary table and the causal mask (when made buffers by a fork).
DROPPED = re.compile(r'(^|\.)(freqs_cis|causal_mask)$'
                     r'|(^|\.)kv_cache\.[kv]_cache$')
PREFIXES = ('module.', '_orig_mod.')


def fqzoo_key(key: str) -> Optional[str]:
    """The fqzoo name of a released key (prefixes stripped); None for the
    entries that are dropped.

    Raises:
        KeyError: ``key`` is not part of the released c2i layout.
    """
    if DROPPED.search(key):
        return None
    for pattern, rename in KEY_RULES:
        match = pattern.fullmatch(key)
        if match:
            return rename(match)
    hint = (' (text-conditional t2i checkpoints are not supported)'
            if key.startswith('cls_embedding.cap_proj') else '')
    raise KeyError(f'Unexpected key "{key}": not part of the released '
                   f'LlamaGen / FAR class-conditional GPT layout{hint}')


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
        shapes['tok_embeddings.weight'] = (sizes[0], width)
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


def load_checkpoint_file(path: Union[str, Path]) -> Any:
    """:func:`~fqzoo.utils.checkpoint.safe_load`, allowing the
    ``argparse.Namespace`` the released training scripts save as ``args``."""
    return safe_load(path, allowed_globals=[argparse.Namespace])


def select_weights(checkpoint: Any, path: Union[str, Path],
                   ema: bool = False) -> Tuple[Dict[str, Tensor], str]:
    """``(state dict, entry)`` of a released checkpoint: ``ema`` with
    ``ema=True``, else ``model``, ``module`` (DeepSpeed), ``state_dict`` or
    the checkpoint itself when it is a bare state dict."""
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{path} holds a {type(checkpoint).__name__}, not '
                         'a checkpoint dict')
    entries = ['ema'] if ema else ['model', 'module', 'state_dict']
    for entry in entries:
        if isinstance(checkpoint.get(entry), dict):
            state, name = checkpoint[entry], entry
            break
    else:
        if ema or not checkpoint or not all(
                torch.is_tensor(v) for v in checkpoint.values()):
            raise KeyError(f'{path} has no {" / ".join(entries)} entry of '
                           f'weights (entries: {sorted(checkpoint)[:10]})')
        state, name = checkpoint, '(bare state dict)'
    bad = [k for k, v in state.items() if not torch.is_tensor(v)]
    if bad:
        raise ValueError(f'{path} entry {name}: "{bad[0]}" is of type '
                         f'{type(state[bad[0]]).__name__}, not a tensor')
    return state, name


def strip_prefixes(state: Dict[str, Tensor]
                   ) -> Tuple[Dict[str, Tensor], List[str]]:
    """Keys without their ``module.`` / ``_orig_mod.`` prefixes, and the
    prefixes removed."""
    out, removed = {}, set()
    for key, value in state.items():
        while key.startswith(PREFIXES):
            prefix = next(p for p in PREFIXES if key.startswith(p))
            removed.add(prefix)
            key = key[len(prefix):]
        out[key] = value
    return out, sorted(removed)


def _tensor(state: Dict[str, Tensor], key: str, why: str,
            dims: int) -> Tensor:
    if key not in state:
        raise KeyError(f'Missing key "{key}" (needed for {why})')
    value = state[key]
    if value.dim() != dims:
        raise ValueError(f'"{key}" has shape {tuple(value.shape)}, expected '
                         f'{dims} dimensions')
    return value


def _count(state: Dict[str, Tensor], pattern: str) -> int:
    """1 + the largest index ``n`` of the keys matching ``pattern``."""
    found = [int(m[1]) for k in state
             for m in [re.fullmatch(pattern, k)] if m]
    return max(found) + 1 if found else 0


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


def detect_family(state: Dict[str, Tensor]) -> str:
    """``'llamagen'`` (``tok_embeddings``) or ``'far'``
    (``tok_embeddings_1``, ...)."""
    if 'tok_embeddings.weight' in state:
        return 'llamagen'
    if 'tok_embeddings_1.weight' in state:
        return 'far'
    raise KeyError('Missing key "tok_embeddings.weight" (LlamaGen) or '
                   '"tok_embeddings_1.weight" (FAR): not a released '
                   'class-conditional GPT checkpoint (keys: '
                   f'{sorted(state)[:6]})')


def infer_architecture(state: Dict[str, Tensor],
                       num_heads: Optional[int] = None) -> dict:
    """What the shapes of a released state dict (prefixes stripped) tell.

    Args:
        state (dict): released keys -> tensors.
        num_heads (int, optional): attention heads. Defaults to None (the
            released size of the width, :data:`RELEASED_NUM_HEADS`).

    Returns:
        dict: ``family``, ``width``, ``num_layers``, ``num_heads``,
        ``num_kv_heads``, ``ffn_hidden_dim``, ``codebook_sizes``,
        ``num_classes`` and, for FAR, ``head_layers``,
        ``head_num_kv_heads``, ``head_ffn_hidden_dim``.
    """
    family = detect_family(state)
    classes = _tensor(state, 'cls_embedding.embedding_table.weight',
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
        tables = ['tok_embeddings.weight']
    else:
        tables = [f'tok_embeddings_{g}.weight' for g in
                  range(1, _count(state, rf'tok_embeddings_{_SUB}\.weight'))]
    sizes = [_tensor(state, t, 'the vocabulary size', 2).shape[0]
             for t in tables]
    arch = dict(family=family, width=width,
                num_layers=_count(state, r'layers\.(\d+)\..*'),
                num_heads=num_heads, codebook_sizes=sizes,
                num_classes=classes.shape[0] - 1)
    if arch['num_layers'] == 0:
        raise KeyError('Missing key "layers.0.attention.wqkv.weight": no '
                       'transformer blocks')
    blocks = [('layers', '')]
    if family == 'far':
        arch['head_layers'] = _count(state, r'ar_head\.(\d+)\..*')
        if arch['head_layers'] == 0:
            raise KeyError('Missing key "ar_head.0.attention.wqkv.weight": '
                           'no FAR head blocks')
        blocks.append(('ar_head', 'head_'))
    for prefix, name in blocks:
        qkv = f'{prefix}.0.attention.wqkv.weight'
        arch[f'{name}num_kv_heads'] = _kv_heads(
            _tensor(state, qkv, 'the key/value heads', 2), qkv, width,
            num_heads)
        arch[f'{name}ffn_hidden_dim'] = _tensor(
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


def convert_state_dict(state: Dict[str, Tensor], arch: dict
                       ) -> Tuple[Dict[str, Tensor], List[str]]:
    """``(fqzoo state dict, dropped released keys)`` of a released state
    dict, every key and shape checked against the model ``arch``
    describes."""
    out, dropped = {}, []
    for key, value in state.items():
        new = fqzoo_key(key)
        if new is None:
            dropped.append(key)
        else:
            out[new] = value
    expected = released_shapes(arch)
    missing = [k for k in expected if k not in state]
    if missing:
        raise KeyError(f'Missing key "{missing[0]}" ({len(missing)} missing '
                       f'in all: {missing[:6]})')
    extra = [k for k in state if k not in expected and k not in dropped]
    if extra:
        raise KeyError(f'Unexpected key "{extra[0]}" for a {arch["family"]} '
                       f'model of {len(arch["codebook_sizes"])} sub-token(s)'
                       f' ({len(extra)} unexpected in all: {extra[:6]})')
    for key, shape in expected.items():
        if tuple(state[key].shape) != shape:
            raise ValueError(f'"{key}" has shape {tuple(state[key].shape)}, '
                             f'the model inferred from the checkpoint '
                             f'expects {shape}')
    return out, dropped


def format_config(value: Any, indent: int = 0) -> str:
    """``value`` as Python source: a dict as ``dict(...)``, on one line
    when short, else one entry a line."""
    if not isinstance(value, dict):
        return repr(value)
    items = [f'{k}={format_config(v, indent + 4)}' for k, v in value.items()]
    inline = f'dict({", ".join(items)})'
    if indent + len(inline) <= 70 and '\n' not in inline:
        return inline
    pad = ' ' * (indent + 4)
    return 'dict(\n' + ',\n'.join(pad + item for item in items) + ')'


def config_text(model_cfg: dict, src: Path, family: str) -> str:
    """A standalone fqzoo config holding ``model_cfg``."""
    info = FAMILIES[family]
    return (f'# {src.name} ({info["origin"]}) converted by {info["tool"]}.\n'
            '# Dropouts are those of the released training scripts; the '
            'token grid\n# is the converter\'s --grid-size.\n'
            "default_scope = 'fqzoo'\n"
            f'model = {format_config(model_cfg)}\n')


def convert_released(src: Union[str, Path], family: str, *,
                     ema: bool = False, num_heads: Optional[int] = None,
                     grid_size: int = 16) -> Tuple[dict, dict]:
    """A released checkpoint as ``(fqzoo checkpoint, model config)``.

    Args:
        src (str | Path): the released ``.pt`` file.
        family (str): ``'llamagen'`` or ``'far'``, what ``src`` must be.
        ema (bool): convert the ``ema`` entry. Defaults to False.
        num_heads (int, optional): attention heads. Defaults to None (the
            released size of the width).
        grid_size (int): token grid side (image size / downsampling).
            Defaults to 16.

    Returns:
        tuple[dict, dict]: ``{'state_dict': ..., 'meta': ...}`` of tensors
        and plain values, and the generator's ``model`` config.
    """
    if family not in FAMILIES:
        raise ValueError(f'family must be one of {sorted(FAMILIES)}, got '
                         f'{family!r}')
    if grid_size < 1:
        raise ValueError(f'grid_size must be >= 1, got {grid_size}')
    src = Path(src)
    state, entry = select_weights(load_checkpoint_file(src), src, ema)
    state, prefixes = strip_prefixes(state)
    try:
        found = detect_family(state)
        if found != family:
            other = FAMILIES[found]['tool']
            raise ValueError(f'a {found} checkpoint, not {family}: convert '
                             f'it with {other}')
        arch = infer_architecture(state, num_heads)
        model_cfg = generator_config(arch, grid_size)
        weights, dropped = convert_state_dict(state, arch)
    except (KeyError, ValueError) as err:
        raise type(err)(f'{src} ({entry}): {err.args[0]}') from None
    meta = dict(source=FAMILIES[family]['origin'], family=family,
                src=src.name, sha256=file_sha256(src), entry=entry,
                stripped_prefixes=prefixes, dropped=dropped,
                dtypes=sorted({str(v.dtype) for v in weights.values()}),
                architecture=arch, grid_size=[grid_size, grid_size],
                converter=FAMILIES[family]['tool'])
    return dict(state_dict=weights, meta=meta), model_cfg


def write_converted(src: Union[str, Path], dst: Union[str, Path],
                    out_config: Union[str, Path], family: str,
                    **kwargs) -> dict:
    """Convert ``src`` (:func:`convert_released`), write the checkpoint to
    ``dst`` and the config to ``out_config``; returns the meta."""
    checkpoint, model_cfg = convert_released(src, family, **kwargs)
    dst, out_config = Path(dst), Path(out_config)
    dst.parent.mkdir(parents=True, exist_ok=True)
    out_config.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, dst)
    out_config.write_text(config_text(model_cfg, Path(src), family))
    return checkpoint['meta']


def converter_main(family: str, description: str,
                   argv: Optional[List[str]] = None) -> dict:
    """The command line of ``tools/convert/llamagen_gpt.py`` and
    ``official_far.py``: parse ``argv``, convert, write, print a summary;
    returns the meta."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', type=Path, help='released checkpoint')
    parser.add_argument('dst', type=Path, help='fqzoo checkpoint to write')
    parser.add_argument('--out-config', type=Path, required=True,
                        help='fqzoo config to write')
    parser.add_argument('--num-heads', type=int, default=None,
                        help='attention heads (default: the released size '
                        f'of the width, {RELEASED_NUM_HEADS})')
    parser.add_argument('--grid-size', type=int, default=16,
                        help='token grid side, image size / downsampling '
                        '(default: 16)')
    parser.add_argument('--ema', action='store_true',
                        help='convert the "ema" entry instead of "model"')
    args = parser.parse_args(argv)
    meta = write_converted(args.src, args.dst, args.out_config, family,
                           ema=args.ema, num_heads=args.num_heads,
                           grid_size=args.grid_size)
    arch = meta['architecture']
    head = (f' + {arch["head_layers"]} head' if family == 'far' else '')
    print(f'Wrote {args.dst} and {args.out_config}: vocabularies '
          f'{arch["codebook_sizes"]}, {arch["num_layers"]}{head} layers, '
          f'width {arch["width"]}, {arch["num_heads"]} heads, '
          f'{arch["num_classes"]} classes, grid {args.grid_size}x'
          f'{args.grid_size} (entry {meta["entry"]}, dropped '
          f'{len(meta["dropped"])} entries)')
    return meta


__all__ = ['RELEASED_NUM_HEADS', 'fqzoo_key', 'released_shapes',
           'load_checkpoint_file', 'select_weights', 'strip_prefixes',
           'detect_family', 'infer_architecture', 'generator_config',
           'convert_state_dict', 'config_text', 'convert_released',
           'write_converted', 'converter_main']
