"""Every leaf config loads, is complete enough for the Runner, and the
CPU-scale ones build and run a forward pass; generator configs build at
the released parameter counts."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from tokenizer_reference import reconstruct_by_hand

from fqzoo.registry import GENERATORS, MODELS

ROOT = Path(__file__).resolve().parents[1]
LEAVES = sorted(p for p in (ROOT / 'configs').rglob('*.py')
                if '_base_' not in p.parts)
TOKENIZERS = [p for p in LEAVES
              if Config.fromfile(str(p)).model.type == 'ImageTokenizer']
GENERATOR_LEAVES = [p for p in LEAVES if p not in TOKENIZERS]
CPU_SCALE = [p for p in TOKENIZERS
             if p.parent.name in ('quickstart', 'ablation')
             or p.parent.parts[-2:] == ('ablation', 'fmnist')
             or p.name.endswith(('_tiny_photos.py', '_tiny_fmnist.py'))]
# Parameters of the released models (FAR: showlab/FQGAN far_dual.py /
# far_triple.py at vocabulary 16384, 1000 classes, 16x16 tokens; GPT-B:
# LlamaGen's 111M).
RELEASED_PARAMS = {'far_b_fqgan_dual': 417_104_896,
                   'far_l_fqgan_dual': 901_195_520,
                   'far_b_fqgan_triple': 451_707_904,
                   'gpt_b_vqgan_ds16': 110_888_448}


def _ids(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize('path', TOKENIZERS, ids=_ids)
def test_tokenizer_config_is_complete(path):
    cfg = Config.fromfile(str(path))
    assert cfg.default_scope == 'fqzoo'
    for loop in ('train', 'test'):
        assert cfg.get(f'{loop}_dataloader') is not None, loop
        assert cfg.get(f'{loop}_cfg') is not None, loop
    assert cfg.test_evaluator
    # validation is on (all three set) or off (all three None, as the
    # shipped models' recipes turn it off), never half set up
    val = [cfg.get(k) for k in ('val_dataloader', 'val_cfg', 'val_evaluator')]
    assert all(v is not None for v in val) or all(v is None for v in val), val
    assert cfg.optim_wrapper.constructor == 'TokenizerOptimWrapperConstructor'
    assert cfg.train_cfg.max_iters > 0


@pytest.mark.parametrize('path', GENERATOR_LEAVES, ids=_ids)
def test_generator_config_is_complete(path):
    cfg = Config.fromfile(str(path))
    assert cfg.default_scope == 'fqzoo'
    assert GENERATORS.get(cfg.model.type) is not None
    assert cfg.train_dataloader.dataset.type == 'CodeDataset'
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.optim_wrapper.optimizer.betas == (0.9, 0.95)
    assert cfg.optim_wrapper.paramwise_cfg.flat_decay_mult == 0.0
    assert cfg.optim_wrapper.clip_grad.max_norm == 1.0
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'


@pytest.mark.parametrize('name', sorted(RELEASED_PARAMS))
def test_paper_generator_matches_released_size(name):
    cfg = Config.fromfile(str(ROOT / 'configs' / 'far' / f'{name}.py'))
    init_default_scope('fqzoo')
    with torch.device('meta'):
        model = GENERATORS.build(cfg.model)
    assert model.grid_size == (16, 16)
    assert set(model.codebook_sizes) == {16384}
    assert sum(p.numel() for p in model.parameters()) == RELEASED_PARAMS[name]


@pytest.mark.parametrize(
    'path', [p for p in GENERATOR_LEAVES if 'fmnist' in p.name
             or p.parent.name == 'far_heads'], ids=lambda p: p.stem)
def test_cpu_scale_generator_trains_and_samples(path):
    cfg = Config.fromfile(str(path))
    init_default_scope('fqzoo')
    # the codes folder need not exist: give the layout it would give
    sizes = [512] if path.name.startswith('ar_tiny') else [256, 256]
    cfg.model.update(tokens=None, grid_size=(8, 8), codebook_sizes=sizes)
    model = MODELS.build(cfg.model)
    codes = torch.stack([torch.randint(v, (2, 8, 8)) for v in sizes], 1)
    losses = model(codes, torch.tensor([0, 9]), mode='loss')
    assert torch.isfinite(losses['loss'])
    sample = model.eval().generate(torch.tensor([3]), cfg_scale=2.0)
    assert sample.shape == (1, len(sizes), 8, 8)


@pytest.mark.parametrize('path', CPU_SCALE, ids=_ids)
def test_cpu_scale_config_builds_and_reconstructs(path):
    torch.manual_seed(0)
    cfg = Config.fromfile(str(path))
    init_default_scope('fqzoo')
    model = MODELS.build(cfg.model)
    dataset = cfg.train_dataloader.dataset
    size = dataset.get('crop_size') or dataset.get('image_size')
    x = torch.rand(2, 3, size, size) * 2 - 1
    losses = model(x, mode='loss')
    assert all(k.startswith('loss_') for k in losses)
    assert all(torch.isfinite(v) for v in losses.values())
    # weights at fan-in scale: at init the 1x1 projections' biases outweigh
    # the features and every position takes one code
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.normal_(std=param[0].numel() ** -0.5)
    idx = model.eval().encode(x)
    # the token grid is the image size over 2 ** (levels - 1) of ch_mult
    grid = size // 2 ** (len(cfg.model.encoder.ch_mult) - 1)
    assert idx.shape == (2, model.quantizer.num_codebooks, grid, grid)
    # tokens and images against the modules run by hand, each quantizer
    # worked out from its definition (tests/tokenizer_reference.py: cdist
    # argmin for VQ and SimVQ's projected codebook, argmax of z E^T for
    # IBQ, FSQ's bounded rounding and mixed radix, LFQ's sign bits, RVQ's
    # residual chain); a float32 near-tie may go the tokenizer's way
    # (TIE_TOL there), nothing else
    recon, expected = reconstruct_by_hand(model, x, ties_to=idx)
    assert torch.equal(idx, expected)
    # varied tokens: at least 8 distinct codes of each sub-codebook
    assert all(idx[:, g].unique().numel() >= 8 for g in range(idx.shape[1]))
    torch.testing.assert_close(model.decode(idx), recon)
    torch.testing.assert_close(model.reconstruct(x), recon)


@pytest.mark.parametrize('path, iters', [
    ('configs/quickstart/fq2_effnet_tiny_photos.py', 2500),
    ('configs/ablation/fq2.py', 1500),
    ('configs/ablation/vq.py', 1500),
    ('configs/ablation/fmnist/fq3.py', 1500),
    ('configs/fq/fq2_tiny_fmnist.py', 1500),
    ('configs/vq/vq_tiny_photos.py', 1500),
])
def test_cpu_schedules_anneal_over_the_whole_run(path, iters):
    """The quickstart runs 2500 iterations; the ablations and the FAR
    tokenizer keep the 1500 their documented runs used. Each cosine ends
    exactly at the last iteration, at the recipe's 3e-5."""
    cfg = Config.fromfile(ROOT / path)
    assert cfg.train_cfg.max_iters == iters
    (cosine, ) = cfg.param_scheduler
    assert cosine['type'] == 'CosineAnnealingLR'
    assert cosine['T_max'] == cosine['end'] == iters
    assert cosine['begin'] == 0 and cosine['eta_min'] == 3e-5


@pytest.mark.parametrize('path, norm', [
    ('configs/quickstart/fq2_effnet_tiny_photos.py', 'none'),
    ('configs/vq/vq_tiny_photos.py', 'none'),
    ('configs/ablation/fq2.py', 'pixel'),
    ('configs/ablation/fmnist/rvq.py', 'pixel'),
    ('configs/fq/fq2_tiny_fmnist.py', 'pixel'),
])
def test_cpu_trunk_norms(path, norm):
    """The quickstart's trunk has no norm layers; the ablations and the FAR
    tokenizer keep the per-position norms their documented runs used, in
    every norm layer of encoder, heads and decoder."""
    from fqzoo.models.encoders.vqgan import ChannelAffine, PixelNorm
    init_default_scope('fqzoo')
    cls = {'none': ChannelAffine, 'pixel': PixelNorm}[norm]
    model = MODELS.build(Config.fromfile(ROOT / path).model)
    norms = [m for m in model.modules()
             if isinstance(m, torch.nn.GroupNorm)]
    assert norms and all(type(m) is cls for m in norms)
