"""Every converter's key table (one format: ``fqzoo.converters.KeyTable``)
pinned by hand-typed pairs, checked both ways (``to_fqzoo``, ``to_released``).

FQGAN: the left column is the layout of showlab/FQGAN's
``tokenizer/vq_model_dual.py`` and ``vq_model_triple.py`` (``VQModel``: a
LlamaGen-style ``Encoder`` whose ``visual_head`` / ``semantic_head[_mid|_high]``
ModuleLists hold one ``FactorizedAdapter`` each, per-branch ``norm_out_<b>`` /
``conv_out_<b>``, ``quant_conv_<b>``, ``quantize_<b>`` with a
``codebook_used`` buffer, and ``FeatPredHead``s with ``upscale``,
``transformer.<l>.{ln_1, attn, ln_2, mlp.c_fc, mlp.c_proj}``). The decoder
input concatenates ``vis`` first, then ``sem`` (Dual) or ``sem_mid``,
``sem_high`` (Triple), so those are fqzoo branches 0, 1, 2.

LlamaGen VQ: ``tokenizer/tokenizer_image/vq_model.py`` (``VQModel``:
``encoder``, ``decoder``, ``quantize.embedding`` with a ``codebook_used``
buffer, ``quant_conv``, ``post_quant_conv``). GPTs: LlamaGen
``autoregressive/models/gpt.py`` and FQGAN ``far_dual.py`` (``layers.<n>``,
``ar_head.<n>``, ``tok_embeddings[_<g>]``, ``output[_<g>]``,
``aggregation_layer``). Every pair is typed here, never generated from the
converter's map.
"""
import re

import pytest
import torch

from fqzoo.converters import (
    convert_released,
    fqgan_key_table,
    gpt_key_table,
    llamagen_vq_key_table,
)
from fqzoo.converters.fqgan import model_config
from fqzoo.converters.model import build_model

# Keys the trunk, the decoder and post_quant_conv keep unchanged.
UNCHANGED = [
    'encoder.conv_in.weight',
    'encoder.conv_blocks.0.res.0.norm1.weight',
    'encoder.conv_blocks.0.res.0.conv2.bias',
    'encoder.conv_blocks.0.downsample.conv.weight',
    'encoder.conv_blocks.1.res.0.nin_shortcut.weight',
    'encoder.conv_blocks.1.attn.0.q.weight',
    'encoder.mid.0.norm1.weight',
    'encoder.mid.1.proj_out.bias',
    'encoder.mid.2.conv2.weight',
    'post_quant_conv.weight',
    'decoder.conv_in.weight',
    'decoder.mid.1.k.weight',
    'decoder.conv_blocks.0.attn.1.v.bias',
    'decoder.conv_blocks.0.upsample.conv.weight',
    'decoder.conv_blocks.1.res.0.nin_shortcut.weight',
    'decoder.norm_out.weight',
    'decoder.conv_out.bias',
]

DUAL = {
    'encoder.visual_head.0.positional_embedding':
        'heads.0.positional_embedding',
    'encoder.visual_head.0.ln_pre.weight': 'heads.0.ln_pre.weight',
    'encoder.visual_head.0.transformer.0.ln_1.weight':
        'heads.0.blocks.0.norm1.weight',
    'encoder.visual_head.0.transformer.1.ln_2.bias':
        'heads.0.blocks.1.norm2.bias',
    'encoder.semantic_head.0.transformer.0.attn.in_proj_weight':
        'heads.1.blocks.0.attn.in_proj_weight',
    'encoder.semantic_head.0.transformer.1.attn.out_proj.weight':
        'heads.1.blocks.1.attn.out_proj.weight',
    'encoder.semantic_head.0.transformer.0.mlp.c_fc.weight':
        'heads.1.blocks.0.mlp.fc1.weight',
    'encoder.semantic_head.0.transformer.0.mlp.c_proj.bias':
        'heads.1.blocks.0.mlp.fc2.bias',
    'encoder.semantic_head.0.ln_post.bias': 'heads.1.ln_post.bias',
    'encoder.norm_out_vis.weight': 'heads.0.norm_out.weight',
    'encoder.conv_out_vis.weight': 'heads.0.conv_out.weight',
    'encoder.norm_out_sem.bias': 'heads.1.norm_out.bias',
    'encoder.conv_out_sem.bias': 'heads.1.conv_out.bias',
    'quant_conv_vis.weight': 'quant_convs.0.weight',
    'quant_conv_sem.bias': 'quant_convs.1.bias',
    'quantize_vis.embedding.weight': 'quantizer.subs.0.embedding.weight',
    'quantize_sem.embedding.weight': 'quantizer.subs.1.embedding.weight',
    'feat_pred_head.upscale.0.weight':
        'regularizers.1.head.proj_in.fc1.weight',
    'feat_pred_head.upscale.2.bias': 'regularizers.1.head.proj_in.fc2.bias',
    'feat_pred_head.class_embedding': 'regularizers.1.head.class_embedding',
    'feat_pred_head.positional_embedding':
        'regularizers.1.head.positional_embedding',
    'feat_pred_head.transformer.0.ln_1.weight':
        'regularizers.1.head.blocks.0.norm1.weight',
    'feat_pred_head.transformer.0.mlp.c_proj.weight':
        'regularizers.1.head.blocks.0.mlp.fc2.weight',
    'feat_pred_head.ln_post.bias': 'regularizers.1.head.ln_post.bias',
}

TRIPLE = {
    'encoder.visual_head.0.transformer.0.ln_1.bias':
        'heads.0.blocks.0.norm1.bias',
    'encoder.semantic_head_mid.0.positional_embedding':
        'heads.1.positional_embedding',
    'encoder.semantic_head_mid.0.transformer.1.attn.in_proj_bias':
        'heads.1.blocks.1.attn.in_proj_bias',
    'encoder.semantic_head_high.0.transformer.1.mlp.c_fc.bias':
        'heads.2.blocks.1.mlp.fc1.bias',
    'encoder.semantic_head_high.0.ln_pre.bias': 'heads.2.ln_pre.bias',
    'encoder.conv_out_vis.bias': 'heads.0.conv_out.bias',
    'encoder.norm_out_sem_mid.bias': 'heads.1.norm_out.bias',
    'encoder.conv_out_sem_mid.weight': 'heads.1.conv_out.weight',
    'encoder.norm_out_sem_high.weight': 'heads.2.norm_out.weight',
    'encoder.conv_out_sem_high.weight': 'heads.2.conv_out.weight',
    'quant_conv_vis.bias': 'quant_convs.0.bias',
    'quant_conv_sem_mid.weight': 'quant_convs.1.weight',
    'quant_conv_sem_high.bias': 'quant_convs.2.bias',
    'quantize_vis.embedding.weight': 'quantizer.subs.0.embedding.weight',
    'quantize_sem_mid.embedding.weight': 'quantizer.subs.1.embedding.weight',
    'quantize_sem_high.embedding.weight': 'quantizer.subs.2.embedding.weight',
    'mid_sem_feat_pred.upscale.0.weight':
        'regularizers.1.head.proj_in.fc1.weight',
    'mid_sem_feat_pred.transformer.0.ln_2.weight':
        'regularizers.1.head.blocks.0.norm2.weight',
    'high_sem_feat_pred.upscale.2.weight':
        'regularizers.2.head.proj_in.fc2.weight',
    'high_sem_feat_pred.class_embedding':
        'regularizers.2.head.class_embedding',
    'high_sem_feat_pred.transformer.0.attn.out_proj.bias':
        'regularizers.2.head.blocks.0.attn.out_proj.bias',
}

DROPPED = {
    'dual': ['quantize_vis.codebook_used', 'quantize_sem.codebook_used'],
    'triple': ['quantize_vis.codebook_used', 'quantize_sem_mid.codebook_used',
               'quantize_sem_high.codebook_used'],
}

TABLES = {
    'dual': {**{k: k for k in UNCHANGED}, **DUAL},
    'triple': {**{k: k for k in UNCHANGED}, **TRIPLE},
}
NUM_BRANCHES = {'dual': 2, 'triple': 3}

# A tiny model in the released layout: regularizer 0 is the
# disentanglement term, regularizers 1.. the semantic teachers of branches
# 1.. in order (as in configs/_base_/models/fqgan_{dual,triple}_ds16.py).
TINY = """
model = dict(
    type='ImageTokenizer',
    encoder=dict(type='VQGANTrunk', ch=8, ch_mult=(1, 2), num_res_blocks=1),
    heads=dict(type='TransformerBranchHead', in_channels=16, out_channels=8,
               num_layers=2, num_heads=2, grid_size=4),
    quantizer=dict(type='FactorizedQuantizer', num_codebooks={k},
                   quantizer=dict(type='VectorQuantizer', codebook_size=32,
                                  embed_dim=4)),
    decoder=dict(type='VQGANDecoder', ch=8, ch_mult=(1, 2), num_res_blocks=1,
                 z_channels=8),
    regularizers=[dict(type='DisentanglementRegularizer')] + [
        dict(type='SemanticRegularizer', branch=b,
             teacher=dict(type='EfficientNetTeacher', pretrained=False),
             head=dict(type='FeaturePredictionHead', in_channels=4, width=16,
                       num_layers=1, num_heads=2, grid_size=4))
        for b in range(1, {k})],
)
"""


def pairs(variant):
    return fqgan_key_table(variant, list(range(1, NUM_BRANCHES[variant])))


@pytest.mark.parametrize('variant', ['dual', 'triple'])
def test_released_keys_map_to_the_typed_fqzoo_keys(variant):
    table = pairs(variant)
    for released, fqzoo in TABLES[variant].items():
        assert table.to_fqzoo(released) == fqzoo, released
        assert table.to_released(fqzoo) == released, fqzoo
    for released in DROPPED[variant]:
        assert table.to_fqzoo(released) is None


def test_unknown_released_key_is_named():
    with pytest.raises(KeyError, match='extra_head.weight'):
        pairs('dual').to_fqzoo('extra_head.weight')


@pytest.mark.parametrize('variant', ['dual', 'triple'])
def test_convert_puts_each_released_tensor_under_the_typed_key(
        tmp_path, variant):
    """A synthetic release holding every parameter of the tiny model, the
    table's keys among them with distinct tensors: ``convert`` must move
    each table entry's tensor to the table's fqzoo key."""
    config = tmp_path / f'tiny_{variant}.py'
    config.write_text(TINY.replace('{k}', str(NUM_BRANCHES[variant])))
    model = build_model(model_config(config), 'cpu')
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    params = dict(model.named_parameters())
    typed = TABLES[variant]
    assert set(typed.values()) <= set(params), \
        set(typed.values()) - set(params)

    rng = torch.Generator().manual_seed(0)
    state = {released: torch.randn(shapes[fqzoo], generator=rng)
             for released, fqzoo in typed.items()}
    table = pairs(variant)
    for name in params:
        if name not in typed.values():
            state[table.to_released(name)] = torch.randn(
                shapes[name], generator=rng)
    assert len(state) == len(params)
    for released in DROPPED[variant]:
        state[released] = torch.zeros(65536)
    src = tmp_path / 'release.pt'
    torch.save({'model': state}, src)

    out, _ = convert_released(src, 'fqgan', config=config)
    assert sorted(out['meta']['dropped']) == sorted(DROPPED[variant])
    for released, fqzoo in typed.items():
        assert torch.equal(out['state_dict'][fqzoo], state[released]), \
            released


LLAMAGEN_VQ = {
    **{k: k for k in [
        'encoder.conv_in.weight',
        'encoder.conv_blocks.0.res.1.norm2.bias',
        'encoder.conv_blocks.1.res.0.nin_shortcut.weight',
        'encoder.conv_blocks.3.downsample.conv.weight',
        'encoder.conv_blocks.4.attn.1.proj_out.weight',
        'encoder.mid.1.q.bias',
        'encoder.norm_out.weight',
        'encoder.conv_out.bias',
        'post_quant_conv.weight',
        'decoder.conv_in.bias',
        'decoder.conv_blocks.0.attn.2.k.weight',
        'decoder.conv_blocks.1.upsample.conv.bias',
        'decoder.conv_out.weight']},
    'quant_conv.weight': 'quant_convs.0.weight',
    'quant_conv.bias': 'quant_convs.0.bias',
    'quantize.embedding.weight': 'quantizer.embedding.weight',
}

LLAMAGEN_GPT = {
    'cls_embedding.embedding_table.weight': 'class_embed.weight',
    'tok_embeddings.weight': 'token_embed.tables.0.weight',
    'layers.11.attention.wqkv.weight':
        'backbone.stack.blocks.11.attention.wqkv.weight',
    'layers.0.feed_forward.w3.weight':
        'backbone.stack.blocks.0.feed_forward.w3.weight',
    'layers.3.ffn_norm.weight': 'backbone.stack.blocks.3.ffn_norm.weight',
    'norm.weight': 'head.norm.weight',
    'output.weight': 'head.outputs.0.weight',
}

FAR_DUAL = {
    'cls_embedding.embedding_table.weight': 'class_embed.weight',
    'tok_embeddings_1.weight': 'token_embed.tables.0.weight',
    'tok_embeddings_2.weight': 'token_embed.tables.1.weight',
    'aggregation_layer.weight': 'token_embed.proj.weight',
    'aggregation_layer.bias': 'token_embed.proj.bias',
    'layers.5.attention_norm.weight':
        'backbone.stack.blocks.5.attention_norm.weight',
    'ar_head.1.attention.wo.weight': 'head.stack.blocks.1.attention.wo.weight',
    'ar_head.0.feed_forward.w1.weight':
        'head.stack.blocks.0.feed_forward.w1.weight',
    'norm.weight': 'head.norm.weight',
    'output_1.weight': 'head.outputs.0.weight',
    'output_2.weight': 'head.outputs.1.weight',
}

GPT_DROPPED = ['freqs_cis', 'causal_mask', 'layers.0.attention.kv_cache.k_cache',
               'ar_head.1.attention.kv_cache.v_cache']

OTHER_TABLES = {
    'llamagen_vq': (llamagen_vq_key_table(), LLAMAGEN_VQ,
                    ['quantize.codebook_used']),
    'llamagen_gpt': (gpt_key_table('llamagen'), LLAMAGEN_GPT, GPT_DROPPED),
    'far_dual': (gpt_key_table('far', 2), FAR_DUAL, GPT_DROPPED),
}


@pytest.mark.parametrize('name', sorted(OTHER_TABLES))
def test_llamagen_and_far_keys_map_to_the_typed_fqzoo_keys(name):
    table, typed, dropped = OTHER_TABLES[name]
    for released, fqzoo in typed.items():
        assert table.to_fqzoo(released) == fqzoo, released
        assert table.to_released(fqzoo) == released, fqzoo
    for released in dropped:
        assert table.to_fqzoo(released) is None, released


@pytest.mark.parametrize('name,key', [
    ('llamagen_vq', 'quantize.codebook_usage'),
    ('llamagen_gpt', 'tok_embeddings_1.weight'),
    ('llamagen_gpt', 'layers.0.attention.bias'),
    ('far_dual', 'output_3.weight'),
    ('far_dual', 'output.weight')])
def test_keys_outside_a_table_are_named(name, key):
    table = OTHER_TABLES[name][0]
    with pytest.raises(KeyError, match=re.escape(
            f'Unexpected key "{key}": not part of the released '
            f'{table.name} layout')):
        table.to_fqzoo(key)
