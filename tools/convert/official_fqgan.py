"""Convert released FQGAN tokenizer checkpoints (showlab/FQGAN:
``fqgan_dual_ds16.pt``, ``fqgan_triple_ds16.pt`` and the ds8 variants; Bai et
al., "Factorized Visual Tokenization and Generation", 2024, arXiv
2411.16681) into fqzoo checkpoints.

The source is a dict whose ``model`` entry is the released ``VQModel`` state
dict; it is loaded with ``torch.load(weights_only=True)``. The output is
``{'state_dict': ..., 'meta': ...}`` of tensors and plain values, loadable by
``fqzoo.apis.init_tokenizer(config, checkpoint)`` with the matching
``configs/_base_/models/fqgan_*.py`` model (discriminator and perceptual loss
set to None: the released file holds neither). The key map (docs/fqgan.md):

===========================================  ================================
released                                     fqzoo
===========================================  ================================
encoder.{conv_in,conv_blocks,mid}.*          encoder.* (``VQGANTrunk``)
encoder.<head>.0.*                           heads.<i>.*
encoder.norm_out_<b>.* / conv_out_<b>.*      heads.<i>.norm_out.* / conv_out.*
quant_conv_<b>.*                             quant_convs.<i>.*
quantize_<b>.embedding.weight                quantizer.subs.<i>.embedding.weight
quantize_<b>.codebook_used                   (dropped: a usage log)
post_quant_conv.*, decoder.*                 unchanged
feat_pred_head.* (Dual)                      regularizers.<r>.head.*
mid_sem_feat_pred.*, high_sem_feat_pred.*    regularizers.<r>.head.* (Triple)
===========================================  ================================

Branches ``<b>``/``<head>``/``<i>``: Dual ``vis``/``visual_head``/0,
``sem``/``semantic_head``/1; Triple ``vis``/``visual_head``/0,
``sem_mid``/``semantic_head_mid``/1, ``sem_high``/``semantic_head_high``/2
(the released decoder input concatenates them in this order). ``<r>`` are the
config's ``SemanticRegularizer`` entries in order. Inside adapters and
prediction heads: ``transformer.<l>`` -> ``blocks.<l>``, ``ln_1`` ->
``norm1``, ``ln_2`` -> ``norm2``, ``mlp.c_fc`` -> ``mlp.fc1``,
``mlp.c_proj`` -> ``mlp.fc2``, ``upscale.0`` -> ``proj_in.fc1``,
``upscale.2`` -> ``proj_in.fc2``.

Usage::

    python tools/convert/official_fqgan.py fqgan_dual_ds16.pt \\
        checkpoints/fqgan_dual_ds16_fqzoo.pth --variant dual
"""
import argparse
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from fqzoo.registry import MODELS
from fqzoo.utils.checkpoint import safe_load

REPO = Path(__file__).resolve().parents[2]
BRANCHES = {
    'dual': [('vis', 'visual_head'), ('sem', 'semantic_head')],
    'triple': [('vis', 'visual_head'), ('sem_mid', 'semantic_head_mid'),
               ('sem_high', 'semantic_head_high')],
}
PRED_HEADS = {
    'dual': ['feat_pred_head'],
    'triple': ['mid_sem_feat_pred', 'high_sem_feat_pred'],
}
INNER = [('transformer.', 'blocks.'), ('ln_1.', 'norm1.'), ('ln_2.', 'norm2.'),
         ('mlp.c_fc.', 'mlp.fc1.'), ('mlp.c_proj.', 'mlp.fc2.'),
         ('upscale.0.', 'proj_in.fc1.'), ('upscale.2.', 'proj_in.fc2.')]
DROPPED = re.compile(r'^quantize_\w+\.codebook_used$')


def prefix_map(variant: str,
               semantic_indices: List[int]) -> List[Tuple[str, str]]:
    """``(released prefix, fqzoo prefix)`` pairs, most specific first."""
    pairs = []
    for i, (branch, head) in enumerate(BRANCHES[variant]):
        pairs += [(f'encoder.{head}.0.', f'heads.{i}.'),
                  (f'encoder.norm_out_{branch}.', f'heads.{i}.norm_out.'),
                  (f'encoder.conv_out_{branch}.', f'heads.{i}.conv_out.'),
                  (f'quant_conv_{branch}.', f'quant_convs.{i}.'),
                  (f'quantize_{branch}.embedding.',
                   f'quantizer.subs.{i}.embedding.')]
    if len(semantic_indices) != len(PRED_HEADS[variant]):
        raise ValueError(
            f'The {variant} variant has {len(PRED_HEADS[variant])} feature '
            f'prediction heads, the config {len(semantic_indices)} '
            'SemanticRegularizer entries')
    pairs += [(f'{name}.', f'regularizers.{r}.head.')
              for name, r in zip(PRED_HEADS[variant], semantic_indices)]
    pairs += [('encoder.', 'encoder.'), ('post_quant_conv.',
                                         'post_quant_conv.'),
              ('decoder.', 'decoder.')]
    return pairs


def _rename_inner(key: str, reverse: bool = False) -> str:
    for old, new in INNER:
        src, dst = (new, old) if reverse else (old, new)
        key = key.replace(f'.{src}', f'.{dst}')
    return key


def convert_key(key: str, pairs: List[Tuple[str, str]]) -> Optional[str]:
    """The fqzoo key of a released key; None for dropped keys."""
    if DROPPED.match(key):
        return None
    for src, dst in sorted(pairs, key=lambda p: -len(p[0])):
        if key.startswith(src):
            new = dst + key[len(src):]
            return _rename_inner(new) if new.startswith(
                ('heads.', 'regularizers.')) else new
    raise KeyError(f'Unexpected key in the released checkpoint: {key}')


def released_key(key: str, pairs: List[Tuple[str, str]]) -> str:
    """Inverse of :func:`convert_key` (documents the released layout)."""
    for src, dst in sorted(pairs, key=lambda p: -len(p[1])):
        if key.startswith(dst):
            rest = key[len(dst):]
            if dst.startswith(('heads.', 'regularizers.')):
                rest = _rename_inner('.' + rest, reverse=True)[1:]
            return src + rest
    raise KeyError(f'No released counterpart of {key}')


def default_config(variant: str, state: Dict[str, torch.Tensor]) -> Path:
    """``configs/_base_/models/fqgan_<variant>_ds<16|8>.py`` from the grid
    size of the adapters' positional embedding."""
    grid = int(state['encoder.visual_head.0.positional_embedding'].shape[0]
               **0.5)
    down = {16: 16, 32: 8}.get(grid)
    if down is None:
        raise ValueError(f'Adapter grid {grid}x{grid} is neither 16 nor 32: '
                         'pass --config')
    return REPO / 'configs' / '_base_' / 'models' / \
        f'fqgan_{variant}_ds{down}.py'


def build_inference_model(config: Path) -> torch.nn.Module:
    """The config's tokenizer without discriminator and perceptual loss."""
    cfg = Config.fromfile(str(config))
    init_default_scope(cfg.get('default_scope', 'fqzoo'))
    cfg.model.update(discriminator=None, perceptual_loss=None)
    return MODELS.build(cfg.model)


def convert(src: Path, variant: str, config: Optional[Path] = None,
            key: str = 'model') -> dict:
    """Released checkpoint ``src`` to an fqzoo checkpoint dict."""
    checkpoint = safe_load(src)
    if key not in checkpoint:
        raise KeyError(f'{src} has no "{key}" entry: {list(checkpoint)}')
    state = checkpoint[key]
    config = Path(config) if config else default_config(variant, state)
    model = build_inference_model(config)
    semantic = [i for i, reg in enumerate(model.regularizers)
                if hasattr(reg, 'head')]
    pairs = prefix_map(variant, semantic)
    target = model.state_dict()
    params = {name for name, _ in model.named_parameters()}
    out, dropped = {}, []
    for name, value in state.items():
        new = convert_key(name, pairs)
        if new is None:
            dropped.append(name)
            continue
        if new not in target:
            raise KeyError(f'{name} -> {new}: not in the model of {config}')
        if value.shape != target[new].shape:
            raise ValueError(f'{name} {tuple(value.shape)} does not fit '
                             f'{new} {tuple(target[new].shape)}')
        out[new] = value
    missing = [k for k in target if k not in out]
    if any(k in params for k in missing):
        raise KeyError('Parameters missing from the released checkpoint: '
                       f'{[k for k in missing if k in params][:10]}')
    # Buffers the released model has no counterpart of (usage statistics):
    # their initial values.
    out.update({k: target[k] for k in missing})
    meta = dict(source='showlab/FQGAN', variant=variant, src=Path(src).name,
                config=str(config), dropped=dropped,
                buffers_initialised=missing)
    return dict(state_dict=out, meta=meta)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', type=Path, help='released .pt checkpoint')
    parser.add_argument('dst', type=Path, help='fqzoo checkpoint to write')
    parser.add_argument('--variant', choices=sorted(BRANCHES), required=True)
    parser.add_argument('--config', type=Path, default=None,
                        help='fqzoo config of the model (default: '
                        'configs/_base_/models/fqgan_<variant>_ds<N>.py)')
    parser.add_argument('--key', default='model',
                        help='entry holding the weights (e.g. "ema")')
    args = parser.parse_args(argv)
    result = convert(args.src, args.variant, args.config, args.key)
    args.dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(result, args.dst)
    print(f'Wrote {args.dst}: {len(result["state_dict"])} tensors, dropped '
          f'{len(result["meta"]["dropped"])} ({args.variant}, '
          f'{result["meta"]["config"]})')


if __name__ == '__main__':
    main()
