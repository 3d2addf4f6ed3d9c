"""Released FQGAN tokenizers (Bai et al., "Factorized Visual Tokenization
and Generation", 2024, arXiv 2411.16681; showlab/FQGAN
``tokenizer/vq_model_dual.py`` / ``vq_model_triple.py``:
``fqgan_dual_ds16.pt``, ``fqgan_triple_ds16.pt`` and the ds8 variants) as
fqzoo ``ImageTokenizer`` models of ``configs/_base_/models/fqgan_*.py``
(discriminator and perceptual loss None: the release holds neither).

The key map (:func:`fqgan_key_table`; docs/fqgan.md):

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
(the released decoder input concatenates them in this order). ``<r>`` are
the config's ``SemanticRegularizer`` entries in order. Inside adapters and
prediction heads: ``transformer.<l>`` -> ``blocks.<l>``, ``ln_1`` ->
``norm1``, ``ln_2`` -> ``norm2``, ``mlp.c_fc`` -> ``mlp.fc1``,
``mlp.c_proj`` -> ``mlp.fc2``, ``upscale.0`` -> ``proj_in.fc1``,
``upscale.2`` -> ``proj_in.fc2``.
"""
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from mmengine.config import Config
from torch import Tensor

from .family import ConverterFamily
from .keys import KeyTable, count_indexed, tensor
from .model import build_model, check_state

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
# Inside an adapter or a prediction head: released -> fqzoo, most specific
# first (``transformer.{n}.{rest}`` covers ``attn.*``).
INNER = [('transformer.{n}.ln_1.{rest}', 'blocks.{n}.norm1.{rest}'),
         ('transformer.{n}.ln_2.{rest}', 'blocks.{n}.norm2.{rest}'),
         ('transformer.{n}.mlp.c_fc.{rest}', 'blocks.{n}.mlp.fc1.{rest}'),
         ('transformer.{n}.mlp.c_proj.{rest}', 'blocks.{n}.mlp.fc2.{rest}'),
         ('transformer.{n}.{rest}', 'blocks.{n}.{rest}'),
         ('upscale.0.{rest}', 'proj_in.fc1.{rest}'),
         ('upscale.2.{rest}', 'proj_in.fc2.{rest}'),
         ('{rest}', '{rest}')]
DROPPED = [r'quantize_\w+\.codebook_used']
TRAINING_ONLY = ('discriminator', 'perceptual_loss')


def fqgan_key_table(variant: str, semantic_indices: Sequence[int]
                    ) -> KeyTable:
    """The key table of a released FQGAN ``variant`` (``'dual'`` or
    ``'triple'``) whose prediction heads belong to the config's
    regularizers ``semantic_indices`` (in order).

    Raises:
        ValueError: as many indices as the variant has prediction heads.
    """
    if len(semantic_indices) != len(PRED_HEADS[variant]):
        raise ValueError(
            f'The {variant} variant has {len(PRED_HEADS[variant])} feature '
            f'prediction heads, the config {len(semantic_indices)} '
            'SemanticRegularizer entries')
    rules: List[Tuple[str, str]] = []
    for i, (branch, head) in enumerate(BRANCHES[variant]):
        rules += [(f'encoder.norm_out_{branch}.{{rest}}',
                   f'heads.{i}.norm_out.{{rest}}'),
                  (f'encoder.conv_out_{branch}.{{rest}}',
                   f'heads.{i}.conv_out.{{rest}}')]
        rules += [(f'encoder.{head}.0.{src}', f'heads.{i}.{dst}')
                  for src, dst in INNER]
        rules += [(f'quant_conv_{branch}.{{rest}}', f'quant_convs.{i}.{{rest}}'),
                  (f'quantize_{branch}.embedding.weight',
                   f'quantizer.subs.{i}.embedding.weight')]
    for name, r in zip(PRED_HEADS[variant], semantic_indices):
        rules += [(f'{name}.{src}', f'regularizers.{r}.head.{dst}')
                  for src, dst in INNER]
    rules += [(f'{part}.{{rest}}', f'{part}.{{rest}}')
              for part in ('encoder', 'post_quant_conv', 'decoder')]
    return KeyTable(f'FQGAN {variant}', rules, dropped=DROPPED)


def detect_fqgan(state: Mapping[str, Tensor]) -> Optional[str]:
    """``'dual'`` or ``'triple'`` for a released FQGAN tokenizer state dict
    (``quantize_vis`` with ``quantize_sem``, or with ``quantize_sem_mid``),
    else None."""
    if 'quantize_vis.embedding.weight' not in state:
        return None
    if 'quantize_sem_mid.embedding.weight' in state:
        return 'triple'
    return 'dual' if 'quantize_sem.embedding.weight' in state else None


def downsample_factor(state: Mapping[str, Tensor]) -> int:
    """``2 ** (levels - 1)`` of the released encoder's ``conv_blocks``."""
    levels = count_indexed(state, r'encoder\.conv_blocks\.(\d+)\..*')
    if levels == 0:
        raise KeyError('Missing key "encoder.conv_blocks.0.res.0.conv1.'
                       'weight": no encoder levels to read the downsample '
                       'factor from')
    return 2 ** (levels - 1)


def default_config(variant: str, state: Mapping[str, Tensor]) -> Path:
    """``configs/_base_/models/fqgan_<variant>_ds<16|8>.py`` from the
    encoder's levels, checked against the adapters' grid (256 px images).

    Raises:
        ValueError: no paper config for that factor, or an adapter grid
            that is not 256 px at that factor.
    """
    factor = downsample_factor(state)
    key = 'encoder.visual_head.0.positional_embedding'
    grid = int(tensor(state, key, 'the token grid', 2).shape[0] ** 0.5)
    path = REPO / 'configs' / '_base_' / 'models' / \
        f'fqgan_{variant}_ds{factor}.py'
    if factor not in (8, 16) or grid * factor != 256:
        raise ValueError(f'Downsample {factor} (encoder levels) and adapter '
                         f'grid {grid}x{grid} ("{key}") are not a released '
                         '256 px model (ds16 or ds8): pass the fqzoo '
                         'config (--config)')
    return path


def model_config(config: Union[str, Path, Mapping]) -> dict:
    """The ``model`` dict of a config file, a config or a model config,
    without its training-only parts."""
    if isinstance(config, (str, Path)):
        config = Config.fromfile(str(config))
    if isinstance(config, Config):
        config = config.to_dict()
    model = dict(config.get('model', config))
    model.update({part: None for part in TRAINING_ONLY})
    return model


def semantic_indices(model_cfg: Mapping) -> List[int]:
    """The regularizers of a model config that have a prediction head."""
    return [i for i, reg in enumerate(model_cfg.get('regularizers') or [])
            if reg.get('head') is not None]


def convert_fqgan(state: Mapping[str, Tensor], *,
                  config: Union[None, str, Path, Mapping] = None
                  ) -> Tuple[Dict[str, Tensor], dict]:
    """``(fqzoo state dict, tokenizer model config)`` of a released FQGAN
    state dict (``module.`` / ``_orig_mod.`` prefixes stripped).

    Args:
        state (Mapping): the released ``VQModel`` weights.
        config (str | Path | Mapping, optional): the fqzoo config (file,
            config or model config) to map onto. Defaults to None:
            ``configs/_base_/models/fqgan_<variant>_ds<N>.py`` of the
            detected variant and downsample factor.

    Returns:
        tuple[dict, dict]: the weights under fqzoo's keys (the usage
        buffers fqzoo adds are not among them) and the model config.

    Raises:
        KeyError: not an FQGAN state dict, a key no rule maps, a converted
            key the model does not have, a parameter missing.
        ValueError: a shape that does not fit the config's model.
    """
    variant = detect_fqgan(state)
    if variant is None:
        raise KeyError('Missing key "quantize_vis.embedding.weight" with '
                       '"quantize_sem.embedding.weight" (Dual) or '
                       '"quantize_sem_mid.embedding.weight" (Triple): not '
                       'a released FQGAN tokenizer')
    source = config if config is not None else default_config(variant, state)
    model_cfg = model_config(source)
    table = fqgan_key_table(variant, semantic_indices(model_cfg))
    weights, _ = table.convert(state)
    check_state(weights, build_model(model_cfg), table.name,
                table.to_released)
    return weights, model_cfg


def image_sizes(model_cfg: Mapping) -> List[int]:
    """The one image size the adapters' positional embedding fits."""
    factor = 2 ** (len(model_cfg['encoder']['ch_mult']) - 1)
    heads = model_cfg['heads']
    heads = heads[0] if isinstance(heads, (list, tuple)) else heads
    return [int(heads['grid_size']) * factor]


def dropped_keys(state: Mapping[str, Tensor]) -> List[str]:
    """The released usage buffers (``quantize_<b>.codebook_used``)."""
    table = KeyTable('FQGAN', [], dropped=DROPPED)
    return [k for k in state if table.is_dropped(k)]


FAMILY = ConverterFamily(
    name='fqgan', kind='tokenizer', origin='showlab/FQGAN',
    tool='tools/convert/official_fqgan.py',
    signature='"quantize_vis.embedding.weight" (FQGAN)',
    detect=detect_fqgan, convert=convert_fqgan, dropped=dropped_keys,
    image_sizes=image_sizes)
