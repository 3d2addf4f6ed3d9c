"""Tiny synthetic checkpoints in the released key layouts and the sampling
cases whose released tokens ``fixtures/released_sampling.json`` holds.

The layouts are those of LlamaGen's ``Transformer`` (FoundationVision/
LlamaGen ``autoregressive/models/gpt.py``) and FAR's (showlab/FQGAN
``autoregressive/models/far_dual.py``) at width 32, 4 heads, SwiGLU width
96 (what ``ModelArgs(dim=32, multiple_of=16)`` gives), a 4x4 grid and 10
classes. The weights are drawn from a seed here, so the fixture needs only
the tokens. ``tools/dev/check_released_sampling.py`` loads the same state
dicts into the released models, runs the released samplers and, with
``--record``, writes the fixture.
"""
import re
from typing import Dict, List

import torch

GRID = 4
BATCH = 3
BATCHES = 2  # per seed: a stream of two batches, as the release loops
SEEDS = (0, 1)
WEIGHT_SEED = 7

ARCHS = {
    'llamagen': dict(family='llamagen', G=1, D=32, H=4, FFN=96, V=24,
                     layers=2, head_layers=0, classes=10),
    'far_dual': dict(family='far', G=2, D=32, H=4, FFN=96, V=16,
                     layers=2, head_layers=2, classes=10),
}

# Sampling options both protocols share; cfg_interval is LlamaGen's only
# (FAR's generate_fq takes it and ignores it), temperature 0 LlamaGen's
# only (FAR divides by it).
CASES = {
    'plain': dict(),
    'temperature': dict(temperature=0.5),
    'top_k': dict(top_k=5),
    'top_p': dict(top_p=0.6),
    'cfg': dict(cfg_scale=2.0),
    'cfg_below_one': dict(cfg_scale=0.5),
    'cfg_temperature_top_p': dict(cfg_scale=2.0, temperature=0.5,
                                  top_p=0.6),
    'cfg_top_k_top_p': dict(cfg_scale=1.5, temperature=0.7, top_k=8,
                            top_p=0.8),
    'argmax': dict(temperature=0.0, cfg_scale=2.0),
    'cfg_interval': dict(cfg_scale=3.0, cfg_interval=3),
    'per_sub_token': dict(cfg_scale=[2.0, 3.0], temperature=[1.0, 0.6],
                          top_k=[0, 6], top_p=[0.9, 1.0]),
}


# Guidance off: LlamaGen's default scale 1; FAR's generate_fq fails at
# exactly 1 (its KV caches are sized for a guided batch when cfg_scale[0]
# >= 1, the batch is guided only above 1), so FAR samples unguided below 1.
UNGUIDED = dict(llamagen=1.0, far_dual=0.9)


def options_for(name: str, case: str) -> dict:
    """The sampling options of ``case`` for architecture ``name``."""
    return dict(dict(cfg_scale=UNGUIDED[name]), **CASES[case])


def cases_for(name: str) -> List[str]:
    """The cases that apply to architecture ``name``."""
    skip = ({'per_sub_token'} if name == 'llamagen'
            else {'argmax', 'cfg_interval'})
    return [case for case in CASES if case not in skip]


def released_shapes(arch: dict) -> Dict[str, tuple]:
    """Keys and shapes of the released state dict, in its order."""
    d, ffn = arch['D'], arch['FFN']
    block = {
        'attention.wqkv.weight': (3 * d, d),
        'attention.wo.weight': (d, d),
        'feed_forward.w1.weight': (ffn, d),
        'feed_forward.w3.weight': (ffn, d),
        'feed_forward.w2.weight': (d, ffn),
        'attention_norm.weight': (d, ),
        'ffn_norm.weight': (d, ),
    }
    shapes = {'cls_embedding.embedding_table.weight': (arch['classes'] + 1,
                                                       d)}
    if arch['family'] == 'llamagen':
        shapes['tok_embeddings.weight'] = (arch['V'], d)
    else:
        for g in range(1, arch['G'] + 1):
            shapes[f'tok_embeddings_{g}.weight'] = (arch['V'], d)
        shapes['aggregation_layer.weight'] = (d, arch['G'] * d)
        shapes['aggregation_layer.bias'] = (d, )
    for n in range(arch['layers']):
        shapes.update({f'layers.{n}.{k}': s for k, s in block.items()})
    for n in range(arch['head_layers']):
        shapes.update({f'ar_head.{n}.{k}': s for k, s in block.items()})
    shapes['norm.weight'] = (d, )
    if arch['family'] == 'llamagen':
        shapes['output.weight'] = (arch['V'], d)
    else:
        for g in range(1, arch['G'] + 1):
            shapes[f'output_{g}.weight'] = (arch['V'], d)
    return shapes


def released_state(name: str,
                   seed: int = WEIGHT_SEED) -> Dict[str, torch.Tensor]:
    """Random weights in the released layout: norms around 1, the rest
    0.3 x normal (logits with a few nats of spread, so top-k, top-p and
    guidance change the draws)."""
    rng = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in released_shapes(ARCHS[name]).items():
        value = torch.randn(shape, generator=rng)
        state[key] = (1 + 0.2 * value if key.endswith('norm.weight')
                      else 0.3 * value)
    return state


RENAMES = [
    (r'cls_embedding\.embedding_table\.weight', 'class_embed.weight'),
    (r'tok_embeddings\.weight', 'token_embed.tables.0.weight'),
    (r'tok_embeddings_(\d+)\.weight',
     lambda m: f'token_embed.tables.{int(m[1]) - 1}.weight'),
    (r'aggregation_layer\.(\w+)', r'token_embed.proj.\1'),
    (r'layers\.(\d+)\.(.+)', r'backbone.stack.blocks.\1.\2'),
    (r'ar_head\.(\d+)\.(.+)', r'head.stack.blocks.\1.\2'),
    (r'norm\.weight', 'head.norm.weight'),
    (r'output\.weight', 'head.outputs.0.weight'),
    (r'output_(\d+)\.weight',
     lambda m: f'head.outputs.{int(m[1]) - 1}.weight'),
]


def fqzoo_state(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The released keys renamed to fqzoo's (docs/tools.md's table)."""
    out = {}
    for key, value in state.items():
        for pattern, new in RENAMES:
            if re.fullmatch(pattern, key):
                out[re.sub(pattern, new, key)] = value
                break
        else:
            raise KeyError(key)
    return out


def fqzoo_config(name: str) -> dict:
    """The fqzoo generator config of architecture ``name``, dropouts 0."""
    arch = ARCHS[name]
    block = dict(num_heads=arch['H'], ffn_hidden_dim=arch['FFN'])
    head = (dict(type='ParallelLinearHead') if arch['family'] == 'llamagen'
            else dict(type='FactorizedARHead', num_layers=arch['head_layers'],
                      **block))
    return dict(type='AutoregressiveGenerator',
                backbone=dict(type='LlamaGenBackbone', width=arch['D'],
                              num_layers=arch['layers'], **block),
                head=head, num_classes=arch['classes'],
                grid_size=(GRID, GRID), codebook_sizes=[arch['V']] * arch['G'])
