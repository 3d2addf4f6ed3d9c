"""AutoregressiveGenerator: shapes, causality, label dropout, the loss and
its gradients, and ``generate`` checked against decoding done by hand with
teacher-forced logits (cache, guidance, per-sub-token sampling)."""
import copy
import json

import pytest
import torch
import torch.nn.functional as F

from fqzoo.models.generators import AutoregressiveGenerator, CodeDataPreprocessor
from fqzoo.models.generators.sampling import rngs_for

f64 = torch.float64
HEADS = ['ParallelLinearHead', 'ParallelMLPHead', 'FactorizedARHead']
NUM_CLASSES = 4


def make_generator(head='FactorizedARHead', sizes=(5, 7), grid=(2, 3), *,
                   class_dropout=0.0, seed=0, **kwargs):
    """A float64, dropout-free generator with random (not zero) outputs."""
    torch.manual_seed(seed)
    head_cfg = dict(type=head)
    if head == 'ParallelMLPHead':
        head_cfg.update(hidden_dim=16)
    if head == 'FactorizedARHead':
        head_cfg.update(num_layers=1, num_heads=2, ffn_hidden_dim=16,
                        resid_dropout=0.0, ffn_dropout=0.0)
    gen = AutoregressiveGenerator(
        backbone=dict(type='LlamaGenBackbone', width=16, num_layers=1,
                      num_heads=2, ffn_hidden_dim=16, token_dropout=0.0,
                      resid_dropout=0.0, ffn_dropout=0.0),
        head=head_cfg, num_classes=NUM_CLASSES, grid_size=grid,
        codebook_sizes=list(sizes), class_dropout=class_dropout,
        init_std=0.3, **kwargs)
    for out in gen.head.outputs:
        torch.nn.init.normal_(out.weight, std=0.5)
    return gen.double().eval()


def random_codes(gen, batch=2):
    h, w = gen.grid_size
    return torch.stack([torch.randint(v, (batch, h, w))
                        for v in gen.codebook_sizes], 1)


def null_class_copy(gen):
    """A copy whose label 0 embeds as the null class: its logits for label
    0 are the unconditional logits, without going through drop_labels."""
    ref = copy.deepcopy(gen).eval()
    with torch.no_grad():
        ref.class_embed.weight[0] = gen.class_embed.weight[NUM_CLASSES]
    return ref


# ---------------------------------------------------------------- shapes
@pytest.mark.parametrize('head', HEADS)
@pytest.mark.parametrize('sizes', [[11], [5, 7], [5, 7, 3]])
def test_logits_shapes_and_uniform_start(head, sizes):
    torch.manual_seed(0)
    gen = AutoregressiveGenerator(
        backbone=dict(type='LlamaGenBackbone', width=16, num_layers=1,
                      num_heads=2, ffn_hidden_dim=16),
        head=dict(type=head, **(dict(num_layers=1, num_heads=2)
                                if head == 'FactorizedARHead' else {})),
        num_classes=NUM_CLASSES, grid_size=(2, 3), codebook_sizes=sizes)
    codes = random_codes(gen)
    logits = gen.logits(codes, torch.tensor([0, 3]))
    assert [tuple(lg.shape) for lg in logits] == [(2, 6, v) for v in sizes]
    # zero output layers: uniform first predictions, loss = mean log V_g
    assert all(not lg.any() for lg in logits)
    loss = gen.loss(codes, torch.tensor([0, 3]))['loss']
    expected = sum(torch.tensor(float(v)).log() for v in sizes) / len(sizes)
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)


# ------------------------------------------------------------- causality
@pytest.mark.parametrize('head', HEADS)
def test_logits_at_t_do_not_see_tokens_from_t_on(head):
    gen = make_generator(head, sizes=(5, 7, 3))
    codes = random_codes(gen)
    labels = torch.tensor([1, 2])
    base = gen.logits(codes, labels)
    h, w = gen.grid_size
    for t in range(h * w):
        changed = codes.clone().view(2, 3, -1)
        changed[:, :, t:] = random_codes(gen).view(2, 3, -1)[:, :, t:]
        changed[:, 0, t] = (codes.view(2, 3, -1)[:, 0, t] + 1) % 5
        logits = gen.logits(changed.view_as(codes), labels)
        assert torch.equal(logits[0][:, :t + 1], base[0][:, :t + 1]), t
        for g in (1, 2):
            assert torch.equal(logits[g][:, :t], base[g][:, :t]), (t, g)
            same_at_t = torch.equal(logits[g][:, t], base[g][:, t])
            # only the factorized head reads sub-token 0 of its position
            assert same_at_t == (head != 'FactorizedARHead'), (t, g)
        if t + 1 < h * w:
            assert not torch.equal(logits[0][:, t + 1], base[0][:, t + 1])


def test_positions_are_raster_order_on_a_non_square_grid():
    gen = make_generator(grid=(2, 3))
    codes = random_codes(gen)
    labels = torch.tensor([1, 2])
    base = gen.logits(codes, labels)[0]
    for r in range(2):
        for c in range(2):  # the last cell is never an input
            changed = codes.clone()
            changed[:, 0, r, c] = (changed[:, 0, r, c] + 1) % 5
            logits = gen.logits(changed, labels)[0]
            first = r * 3 + c + 1
            assert torch.equal(logits[:, :first], base[:, :first])
            assert not torch.equal(logits[:, first], base[:, first])


# --------------------------------------------------------- label dropout
def test_full_label_dropout_in_training_is_the_null_class():
    gen = make_generator(class_dropout=1.0)
    codes = random_codes(gen)
    uncond = null_class_copy(gen).logits(codes, torch.tensor([0, 0]))
    cond = gen.logits(codes, torch.tensor([1, 3]))
    gen.train()
    dropped = gen.logits(codes, torch.tensor([1, 3]))
    for a, b, c in zip(dropped, uncond, cond):
        assert torch.equal(a, b)
        assert not torch.allclose(a, c)
    # in eval mode no label is dropped
    for a, c in zip(gen.eval().logits(codes, torch.tensor([1, 3])), cond):
        assert torch.equal(a, c)


def test_half_label_dropout_drops_about_half():
    gen = make_generator(class_dropout=0.5).train()
    torch.manual_seed(0)
    labels = torch.randint(NUM_CLASSES, (4000, ))
    out = gen.drop_labels(labels)
    null = out == NUM_CLASSES
    assert abs(float(null.float().mean()) - 0.5) < 0.03  # ~4 sigma
    assert torch.equal(out[~null], labels[~null])
    assert torch.equal(gen.eval().drop_labels(labels), labels)


def test_class_dropout_must_be_a_probability():
    with pytest.raises(ValueError, match='1.5'):
        make_generator(class_dropout=1.5)


# ------------------------------------------------------------------ loss
@pytest.mark.parametrize('head', HEADS)
def test_loss_is_the_mean_cross_entropy_and_trains_everything(head):
    gen = make_generator(head, sizes=(5, 7, 3))
    codes = random_codes(gen, batch=3)
    labels = torch.tensor([0, 1, 3])
    logits = gen.logits(codes, labels)
    nlls = []
    for g, lg in enumerate(logits):
        target = codes[:, g].reshape(3, -1)  # raster order
        nlls.append(F.cross_entropy(lg.reshape(-1, lg.shape[-1]),
                                    target.reshape(-1)))
    out = gen.loss(codes, labels)
    torch.testing.assert_close(out['loss'], sum(nlls) / 3)
    for g, (nll, lg) in enumerate(zip(nlls, logits)):
        torch.testing.assert_close(out[f'nll_{g}'], nll)
        acc = (lg.argmax(-1) == codes[:, g].reshape(3, -1)).float().mean()
        assert float(out[f'acc_{g}']) == pytest.approx(float(acc))
    assert not any(v.requires_grad for k, v in out.items() if k != 'loss')
    out['loss'].backward()
    missing = [name for name, p in gen.named_parameters()
               if p.grad is None or not p.grad.any()]
    assert missing == []
    for name in ('class_embed.weight', 'token_embed.tables.0.weight',
                 'token_embed.tables.2.weight',
                 'backbone.stack.blocks.0.attention.wqkv.weight',
                 'head.outputs.2.weight'):
        assert dict(gen.named_parameters())[name].grad.any(), name


def test_forward_modes():
    gen = make_generator()
    codes = random_codes(gen)
    labels = torch.tensor([1, 2])
    loss = gen.loss(codes, labels)
    assert torch.equal(gen(codes, labels, mode='loss')['loss'], loss['loss'])
    for a, b in zip(gen(codes, labels, mode='tensor'),
                    gen.logits(codes, labels)):
        assert torch.equal(a, b)
    # predict: per sample, the mean NLL of each sub-token over positions
    logits = gen.logits(codes, labels)
    predicted = gen(codes, labels, mode='predict')
    assert len(predicted) == 2
    for b, sample in enumerate(predicted):
        expected = [float(F.cross_entropy(lg[b], codes[b, g].flatten()))
                    for g, lg in enumerate(logits)]
        assert sample['nll'] == pytest.approx(expected, rel=1e-6)
    mean = sum(sum(s['nll']) for s in predicted) / (2 * gen.num_tokens)
    assert mean == pytest.approx(float(loss['loss']), rel=1e-6)
    with pytest.raises(RuntimeError, match='Invalid mode "bad"'):
        gen(codes, labels, mode='bad')


def test_data_preprocessor():
    data = dict(codes=[torch.zeros(2, 2, 3, dtype=torch.int32)] * 3,
                label=[0, 2, 1])
    out = CodeDataPreprocessor()(data)
    assert out['inputs'].shape == (3, 2, 2, 3)
    assert out['inputs'].dtype == torch.long
    assert out['data_samples'].tolist() == [0, 2, 1]


# -------------------------------------------------------------- generate
def decode_by_hand(gen, labels, scale=lambda g, t: 1.0):
    """Greedy decoding sub-token by sub-token from teacher-forced logits:
    the argmax of ``u + s (c - u)``."""
    null = null_class_copy(gen)
    h, w = gen.grid_size
    codes = torch.zeros(len(labels), gen.num_tokens, h, w, dtype=torch.long)
    for t in range(h * w):
        for g in range(gen.num_tokens):
            cond = gen.logits(codes, labels)[g][:, t].double()
            uncond = null.logits(codes, torch.zeros_like(labels))[g][:, t]
            s = scale(g, t)
            codes[:, g, t // w, t % w] = (uncond + s * (cond - uncond)
                                          ).argmax(-1)
    return codes


@pytest.mark.parametrize('head', HEADS)
@pytest.mark.parametrize('cfg_scale', [1.0, 3.0])
def test_generate_with_and_without_cache_agree(head, cfg_scale):
    gen = make_generator(head)
    labels = torch.tensor([0, 1, 3])
    out = [gen.generate(labels, cfg_scale=cfg_scale,
                        rng=rngs_for([5, 6, 7]),
                        use_cache=use_cache) for use_cache in (True, False)]
    assert out[0].shape == (3, 2, 2, 3)
    assert torch.equal(out[0], out[1])
    assert out[0][:, 0].max() < 5 and out[0][:, 1].max() < 7
    assert gen.backbone.stack.caches is None
    assert getattr(getattr(gen.head, 'stack', None), 'caches', None) is None


@pytest.mark.parametrize('head', ['ParallelLinearHead', 'FactorizedARHead'])
def test_greedy_guided_generation_equals_decoding_by_hand(head):
    gen = make_generator(head, grid=(2, 2))
    labels = torch.tensor([1, 2])
    for kwargs, scale in [
            (dict(cfg_scale=1.0), lambda g, t: 1.0),
            (dict(cfg_scale=25.0), lambda g, t: 25.0),
            (dict(cfg_scale=[25.0, 1.0]), lambda g, t: [25.0, 1.0][g]),
            (dict(cfg_scale=25.0, cfg_schedule='linear'),
             lambda g, t: 1 + 24.0 * t / 3),
            # LlamaGen's cfg_interval 0: positions 0 and 1 guided, then not
            (dict(cfg_scale=25.0, cfg_interval=0),
             lambda g, t: 25.0 if t <= 1 else 1.0),
            (dict(cfg_scale=25.0, cfg_interval=1.5),
             lambda g, t: 25.0 if t <= 2 else 1.0)]:
        out = gen.generate(labels, temperature=0, **kwargs)
        assert torch.equal(out, decode_by_hand(gen, labels, scale)), kwargs
    # the guidance changes the result (the check above is not vacuous)
    assert not torch.equal(gen.generate(labels, temperature=0),
                           gen.generate(labels, temperature=0, cfg_scale=25.0))


def test_guidance_at_scale_one_is_unguided_sampling():
    gen = make_generator('FactorizedARHead')
    labels = torch.tensor([0, 2, 3])
    plain = gen.generate(labels, rng=rngs_for([1, 2, 3]))
    again = gen.generate(labels, cfg_scale=1.0,
                         rng=rngs_for([1, 2, 3]))
    # a scale a hair above 1 runs the doubled (cond + null) batch: its
    # conditional half must compute the same draws
    doubled = gen.generate(labels, cfg_scale=[1.0, 1.0 + 1e-12],
                           rng=rngs_for([1, 2, 3]))
    assert torch.equal(plain, again) and torch.equal(plain, doubled)


def test_a_samples_tokens_depend_only_on_its_own_seed():
    gen = make_generator('FactorizedARHead')
    big = gen.generate(torch.tensor([0, 2, 3]), cfg_scale=2.0,
                       rng=rngs_for([1, 2, 3]))
    small = gen.generate(torch.tensor([2]), cfg_scale=2.0,
                         rng=rngs_for([2]))
    assert torch.equal(big[1:2], small)


def test_per_sub_token_sampling_arguments():
    gen = make_generator('FactorizedARHead')
    labels = torch.tensor([0, 1, 2, 3] * 2)
    for kwargs in (dict(top_k=[1, 0]), dict(temperature=[0.0, 1.0]),
                   dict(top_p=[1e-6, 1.0])):
        out = gen.generate(labels, rng=rngs_for(range(8)),
                           **kwargs)
        greedy = [(lg.argmax(-1) == out[:, g].reshape(8, -1)).all()
                  for g, lg in enumerate(gen.logits(out, labels))]
        # sub-token 0 is the argmax given what came before, sub-token 1 not
        assert greedy[0] and not greedy[1], kwargs


def test_generate_restores_the_mode():
    gen = make_generator()
    gen.train()
    gen.generate(torch.tensor([1]))
    assert gen.training and gen.head.training and gen.backbone.training
    gen.eval()
    gen.generate(torch.tensor([1]))
    assert not gen.training


# ------------------------------------------------------------ bad inputs
@pytest.mark.parametrize('codes,match', [
    (torch.zeros(2, 3, 2, 3, dtype=torch.long), r'\[B, 2, 2, 3\].*3, 2, 3'),
    (torch.zeros(2, 2, 3, 2, dtype=torch.long), r'got \[2, 2, 3, 2\]'),
    (torch.full((2, 2, 2, 3), 5), r'sub-token 0 .*\[0, 5\), got \[5, 5\]'),
    (torch.full((2, 2, 2, 3), -1), r'sub-token 0 .*got \[-1, -1\]')])
def test_bad_codes(codes, match):
    gen = make_generator()
    with pytest.raises(ValueError, match=match):
        gen.logits(codes, torch.tensor([0, 1]))


def test_bad_sub_token_one_index():
    gen = make_generator()
    codes = torch.zeros(2, 2, 2, 3, dtype=torch.long)
    codes[1, 1, 1, 2] = 7
    with pytest.raises(ValueError, match=r'sub-token 1 .*\[0, 7\).*\[0, 7\]'):
        gen.loss(codes, torch.tensor([0, 1]))


@pytest.mark.parametrize('labels', [[0, 4], [-1, 0]])
def test_bad_labels(labels):
    gen = make_generator()
    codes = torch.zeros(2, 2, 2, 3, dtype=torch.long)
    match = rf'\[0, 4\), got \[{min(labels)}, {max(labels)}\]'
    with pytest.raises(ValueError, match=match):
        gen.logits(codes, torch.tensor(labels))
    with pytest.raises(ValueError, match=match):
        gen.generate(torch.tensor(labels))


def test_labels_that_are_not_whole_numbers_are_refused():
    """0.5 and 2.7 were cut to classes 0 and 2; whole floats are classes."""
    gen = make_generator()
    codes = torch.zeros(2, 2, 2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match=r'got 0.5 \(item 0\), 2.7 '
                       r'\(item 1\)'):
        gen.generate(torch.tensor([0.5, 2.7]))
    with pytest.raises(ValueError, match='whole numbers'):
        gen.logits(codes, torch.tensor([1.0, 0.5]))
    torch.testing.assert_close(gen.logits(codes, torch.tensor([1.0, 2.0])),
                               gen.logits(codes, torch.tensor([1, 2])))


@pytest.mark.parametrize('kwargs,match', [
    (dict(cfg_scale=[2.0]), 'cfg_scale has 1 values'),
    (dict(top_k=[1, 0, 0]), 'top_k has 3 values'),
    (dict(top_p=(0.5, 0.5, 0.5)), 'top_p has 3 values'),
    (dict(temperature=[1.0]), 'temperature has 1 values'),
    (dict(cfg_schedule='cosine'), "'cosine'")])
def test_bad_generate_arguments(kwargs, match):
    gen = make_generator().train()
    with pytest.raises(ValueError, match=match):
        gen.generate(torch.tensor([0]), **kwargs)
    assert gen.training


# ---------------------------------------------------------- token layout
def test_layout_from_a_codes_manifest(tmp_path):
    (tmp_path / 'manifest.json').write_text(json.dumps(dict(
        code_shape=[10, 3, 2, 4], codebook_sizes=[5, 6, 7])))
    gen = AutoregressiveGenerator(
        backbone=dict(type='LlamaGenBackbone', width=16, num_layers=1,
                      num_heads=2, ffn_hidden_dim=16),
        head=dict(type='FactorizedARHead', num_layers=1, num_heads=2,
                  ffn_hidden_dim=16),
        num_classes=NUM_CLASSES, tokens=str(tmp_path))
    assert gen.grid_size == (2, 4) and gen.codebook_sizes == [5, 6, 7]
    assert gen.backbone.max_len == 9
    assert [lg.shape[-1] for lg in gen.logits(
        torch.zeros(1, 3, 2, 4, dtype=torch.long), torch.tensor([0]))] == [
            5, 6, 7]
    assert gen.generate(torch.tensor([1, 2])).shape == (2, 3, 2, 4)


def test_layout_needs_a_source():
    with pytest.raises(ValueError, match='grid_size and codebook_sizes'):
        AutoregressiveGenerator(
            backbone=dict(type='LlamaGenBackbone', width=16, num_layers=1,
                          num_heads=2),
            head=dict(type='ParallelLinearHead'), num_classes=NUM_CLASSES)


def test_an_empty_batch_is_refused_by_name():
    """B = 0 used to fail deep inside an attention reshape."""
    gen = make_generator().eval()
    empty = torch.zeros(0, dtype=torch.long)
    with pytest.raises(ValueError, match='^labels is empty: give at least '
                       r'one class label \(one per image\)$'):
        gen.generate(empty)
    with pytest.raises(ValueError, match='^labels is empty'):
        gen.logits(torch.zeros(0, 2, 2, 3, dtype=torch.long), empty)
