"""Generator configs by value: the paper-scale FAR / LlamaGen configs have
the released parameter counts part by part, and the models the CPU-scale
configs build are causal, sample by the argmax of their own teacher-forced
logits with the KV cache, and train on the mean cross-entropy.

The part formulas are written from the released code's description
(showlab/FQGAN ``autoregressive/models/far_dual.py`` / ``far_triple.py``,
FoundationVision/LlamaGen ``autoregressive/models/gpt.py``): a block is
``wqkv`` (d x 3d, no bias), ``wo`` (d x d), a SwiGLU feed-forward of hidden
width ``int(8d / 3)`` rounded up to a multiple of 256 (``w1``, ``w3``,
``w2``, no bias) and two RMSNorms; a ``LabelEmbedder`` of 1000 classes plus
the null class; one ``tok_embeddings`` table per sub-token and, with more
than one, an ``aggregation_layer`` Linear(G d, d) with bias; the backbone's
``layers``, FAR's ``ar_head`` blocks, the final RMSNorm and one bias-free
``output`` layer per sub-token.
"""
import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from mmengine.config import Config
from mmengine.registry import init_default_scope

from fqzoo.registry import GENERATORS

CONFIGS = Path(__file__).resolve().parents[3] / 'configs'
VOCAB = 16384


def swiglu_hidden(d):
    hidden = int(2 * 4 * d / 3)
    return -(-hidden // 256) * 256


def block(d):
    return 3 * d * d + d * d + 3 * d * swiglu_hidden(d) + 2 * d


# config, (width, backbone layers, head blocks, sub-tokens), the released
# total (FAR: counted from far_dual.py / far_triple.py's modules; LlamaGen:
# the metafile's, its GPT_* sizes)
PAPER = [
    ('far/far_b_fqgan_dual.py', (1024, 24, 3, 2), 417_104_896),
    ('far/far_b_fqgan_triple.py', (1024, 24, 3, 3), 451_707_904),
    ('far/far_l_fqgan_dual.py', (1280, 36, 4, 2), 901_195_520),
    ('far/gpt_b_vqgan_ds16.py', (768, 12, 0, 1), 110_888_448),
    ('llamagen/gpt_b_c2i_256.py', (768, 12, 0, 1), 110_888_448),
    ('llamagen/gpt_l_c2i_256.py', (1024, 24, 0, 1), 342_910_976),
    ('llamagen/gpt_xl_c2i_384.py', (1280, 36, 0, 1), 774_699_520),
    ('llamagen/gpt_xxl_c2i_384.py', (1536, 48, 0, 1), 1_410_972_672),
    ('llamagen/gpt_3b_c2i_384.py', (3200, 24, 0, 1), 3_096_659_200),
]


def metafile_parameters():
    """``Parameters`` of every model in the FAR and LlamaGen metafiles."""
    out = {}
    for family in ('far', 'llamagen'):
        text = (CONFIGS / family / 'metafile.yml').read_text()
        for model in yaml.safe_load(text)['Models']:
            out[model['Config']] = model['Metadata']['Parameters']
    return out


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_hand_worked_block():
    # FAR-B / GPT-L width 1024: SwiGLU hidden int(8192 / 3) = 2730 -> 2816
    assert swiglu_hidden(1024) == 2816
    assert block(1024) == 4 * 1024 ** 2 + 3 * 1024 * 2816 + 2 * 1024 \
        == 12_847_104
    # GPT-3B width 3200: 8533 -> 8704
    assert swiglu_hidden(3200) == 8704


@pytest.mark.parametrize('path,arch,total', PAPER,
                         ids=[p for p, _, _ in PAPER])
def test_paper_generator_parts_equal_the_released_formula(path, arch, total):
    d, layers, head_blocks, g = arch
    cfg = Config.fromfile(str(CONFIGS / path))
    init_default_scope('fqzoo')
    with torch.device('meta'):
        model = GENERATORS.build(cfg.model)
    assert model.codebook_sizes == [VOCAB] * g
    head_stack = getattr(model.head, 'stack', None)
    parts = dict(
        class_embed=count(model.class_embed),
        tables=[count(t) for t in model.token_embed.tables],
        aggregation=count(model.token_embed)
        - sum(count(t) for t in model.token_embed.tables),
        backbone=[count(b) for b in model.backbone.stack.blocks],
        head_blocks=[count(b) for b in head_stack.blocks]
        if head_stack is not None else [],
        head_norm=count(model.head.norm),
        outputs=[count(o) for o in model.head.outputs])
    assert parts == dict(
        class_embed=1001 * d, tables=[VOCAB * d] * g,
        aggregation=g * d * d + d if g > 1 else 0,
        backbone=[block(d)] * layers, head_blocks=[block(d)] * head_blocks,
        head_norm=d, outputs=[d * VOCAB] * g)
    # nothing outside the parts above
    assert count(model) == sum(sum(v) if isinstance(v, list) else v
                               for v in parts.values()) == total
    # the model index promises the same number (two configs are not in it)
    indexed = metafile_parameters()
    if path not in ('far/far_b_fqgan_triple.py', 'far/gpt_b_vqgan_ds16.py'):
        assert indexed[f'configs/{path}'] == total


# The CPU-scale generator configs, on the layout their codes would give
# (ablation/far_heads/ar_head.py builds far_tiny_fmnist's model).
CPU = ['far/far_tiny_fmnist.py', 'far/ar_tiny_fmnist.py',
       'ablation/far_heads/linear_head.py', 'ablation/far_heads/mlp_head.py']


def test_the_ar_head_ablation_is_the_tiny_far():
    model = Config.fromfile(str(CONFIGS / 'far' / 'far_tiny_fmnist.py')).model
    assert Config.fromfile(str(
        CONFIGS / 'ablation' / 'far_heads' / 'ar_head.py')).model == model


def cpu_model(path):
    """The config's model on an 8x8 grid of its codebooks (FAR: 2 x 256,
    AR: 512) in float64 eval mode, its weights redrawn at fan-in scale (the
    output layers start at zero, where every logit is 0, and the 0.02 init
    leaves attention nearly uniform: little would be visible)."""
    cfg = Config.fromfile(str(CONFIGS / path))
    init_default_scope('fqzoo')
    sizes = [512] if Path(path).name == 'ar_tiny_fmnist.py' else [256, 256]
    cfg.model.update(tokens=None, grid_size=(8, 8), codebook_sizes=sizes)
    torch.manual_seed(0)
    model = GENERATORS.build(cfg.model)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.normal_(std=param.shape[1] ** -0.5)
    return model.double().eval()


def random_codes(model, batch, seed):
    rng = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(v, (batch, 8, 8), generator=rng)
                        for v in model.codebook_sizes], 1)


@pytest.mark.parametrize('path', CPU)
def test_cpu_config_model_is_causal(path):
    """Changing the codes from position t on leaves every logit before t
    and sub-token 0's logits at t unchanged, and changes those at t + 1."""
    model = cpu_model(path)
    codes, other = random_codes(model, 2, 1), random_codes(model, 2, 2)
    labels = torch.tensor([3, 7])
    with torch.no_grad():
        base = model.logits(codes, labels)
        for t in (0, 27, 63):
            changed = codes.clone().flatten(2)
            changed[:, :, t:] = other.flatten(2)[:, :, t:]
            for g, size in enumerate(model.codebook_sizes):
                changed[:, g, t] = (codes.flatten(2)[:, g, t] + 1) % size
            logits = model.logits(changed.view_as(codes), labels)
            for g in range(len(logits)):
                assert torch.equal(logits[g][:, :t], base[g][:, :t]), (t, g)
            assert torch.equal(logits[0][:, t], base[0][:, t]), t
            if t < 63:
                assert (logits[0][:, t + 1] - base[0][:, t + 1]).abs().max() \
                    > 1e-6, t


@pytest.mark.parametrize('path', CPU)
def test_cpu_config_model_samples_the_argmax_of_its_full_forward(path):
    """Greedy sampling with the KV cache at cfg 3 (the doubled batch of
    conditional and null-class rows) picks at every position and sub-token
    the argmax of ``u + 3 (c - u)``, c and u the teacher-forced logits of
    one full forward over the sampled codes with the labels and with the
    null class: the cached steps compute the full pass's logits. (Unguided
    and scheduled guidance: test_ar_generator.py, at tiny sizes.)"""
    model = cpu_model(path)
    null = copy.deepcopy(model)  # label 0 embeds as the null class
    with torch.no_grad():
        null.class_embed.weight[0] = model.class_embed.weight[
            model.num_classes]
    labels = torch.tensor([1, 4, 9])
    with torch.no_grad():
        out = model.generate(labels, cfg_scale=3.0, temperature=0,
                             use_cache=True)
        cond = model.logits(out, labels)
        uncond = null.logits(out, torch.zeros_like(labels))
    for g, (c, u) in enumerate(zip(cond, uncond)):
        assert out[:, g].unique().numel() > 8, g
        assert torch.equal((u + 3.0 * (c - u)).argmax(-1),
                           out[:, g].flatten(1)), g


@pytest.mark.parametrize('path', CPU)
def test_cpu_config_loss_is_the_mean_cross_entropy(path):
    model = cpu_model(path)
    codes, labels = random_codes(model, 3, 3), torch.tensor([0, 5, 9])
    with torch.no_grad():
        loss = model(codes, labels, mode='loss')['loss']
        logits = model.logits(codes, labels)
    expected = sum(F.cross_entropy(lg.flatten(0, 1), codes[:, g].flatten())
                   for g, lg in enumerate(logits)) / len(logits)
    torch.testing.assert_close(loss, expected)
    # random output layers: far from log V (the zero-initialised value)
    assert abs(float(loss) - torch.tensor(256.0).log().item()) > 0.1
