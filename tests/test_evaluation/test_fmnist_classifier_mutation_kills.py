"""The Fashion-MNIST classifier's training, augmentation, accuracy and
files, in-process (mutation testing found that only the tool's subprocess
ran :func:`train_classifier`; docs/testing.md lists the mutants these
tests kill).

References are worked out another way: the shift is a pixel-by-pixel
translation, the augmentation replays the documented draws (per epoch a
permutation, per batch a flip draw per image, then the shifts) from a
generator seeded with ``seed``, the learning rates are the one-cycle
formula (cosine from lr / 25 up to lr over the first 30 % of the steps,
then down to lr / 25 / 1e4), the loss is the cross entropy done in float64
from the logits the model gave, accuracies are counted. A stand-in
classifier two channels wide keeps the runs to a fraction of a second.
"""
import gzip
import math
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import fqzoo.evaluation.fmnist_classifier as fc
from fqzoo.evaluation.fmnist_classifier import (
    FashionMNISTClassifier,
    _shift,
    accuracy,
    load_fmnist_classifier,
    load_split,
    predict,
    save_classifier,
    train_classifier,
    uint8_to_inputs,
)


def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``[n_out, n_in]`` weights of a bilinear resize with antialiasing:
    output pixel i is centred at (i + 1/2) n_in / n_out in input pixels and
    weighs input pixel j by the triangle 1 - |j + 1/2 - centre| / s, s the
    scale when shrinking, else 1, normalised over the pixels that exist."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    weights = np.zeros((n_out, n_in))
    for i in range(n_out):
        centre = (i + 0.5) * scale
        for j in range(n_in):
            weights[i, j] = max(0.0, 1 - abs(j + 0.5 - centre) / support)
        weights[i] /= weights[i].sum()
    return weights


def translate(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``image [C, H, W]`` moved ``dy`` pixels down and ``dx`` right, -1
    where nothing moves in."""
    _, h, w = image.shape
    out = np.full_like(image, -1.0)
    for r in range(h):
        for c in range(w):
            if 0 <= r - dy < h and 0 <= c - dx < w:
                out[:, r, c] = image[:, r - dy, c - dx]
    return out


def random_images(count: int, size: int = 8, seed: int = 0):
    """``[count, 3, size, size]`` in [-1, 1], the channels different (a
    flip of the channel axis shows), and labels."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(count, 3, size, size, generator=g) * 2 - 1
    return images, torch.randint(0, 10, (count,), generator=g)


def augmented_batches(images, *, epochs, batch_size, max_shift, seed):
    """The training batches by hand: ``[(indices, inputs), ...]``."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=g)
        for idx in order.split(batch_size):
            flips = (torch.rand(len(idx), generator=g) < 0.5).tolist()
            moves = [(0, 0)] * len(idx)
            if max_shift:
                draws = torch.randint(0, 2 * max_shift + 1, (len(idx), 2),
                                      generator=g)
                moves = (max_shift - draws).tolist()
            out = []
            for i, flip, (dy, dx) in zip(idx.tolist(), flips, moves):
                image = images[i].numpy()
                if flip:
                    image = image[:, :, ::-1]
                out.append(translate(image, dy, dx))
            batches.append((idx, torch.from_numpy(np.stack(out))))
    return batches


def one_cycle(peak: float, total: int) -> list:
    """The learning rate of each of ``total`` steps."""
    low, end, top = peak / 25, peak / 25 / 1e4, 0.3 * total - 1
    lrs = []
    for k in range(total):
        if k <= top:
            a, b, t = low, peak, k / top
        else:
            a, b, t = peak, end, (k - top) / (total - 1 - top)
        lrs.append(b + (a - b) * (1 + math.cos(math.pi * t)) / 2)
    return lrs


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> list:
    """Per-sample cross entropy in float64."""
    out = []
    for row, label in zip(logits.double().tolist(), labels.tolist()):
        top = max(row)
        lse = top + math.log(sum(math.exp(v - top) for v in row))
        out.append(lse - row[label])
    return out


def hand_accuracy(model, images, labels) -> float:
    with torch.no_grad():
        pred = model(images).argmax(1).tolist()
    return sum(p == y for p, y in zip(pred, labels.tolist())) / len(labels)


@pytest.fixture
def spy(monkeypatch):
    """train_classifier with a two-channel classifier whose training inputs
    and logits are recorded, AdamW recording the learning rate and weight
    decay of every step, and a clock that moves 1.26 s per training step."""
    rec = SimpleNamespace(models=[], inputs=[], logits=[], steps=[],
                          now=[1000.0], on=[True])

    def hook(module, args, out):
        if rec.on[0]:
            rec.inputs.append(args[0].detach().clone())
            rec.logits.append(out.detach().clone())
            rec.now[0] += 1.26

    def small_classifier():
        model = FashionMNISTClassifier(width=2, feature_dim=4)
        model.register_forward_hook(hook)
        rec.models.append(model)
        return model

    class RecordingAdamW(torch.optim.AdamW):
        def step(self, closure=None):
            group = self.param_groups[0]
            rec.steps.append((group['lr'], group['weight_decay']))
            return super().step(closure)

    monkeypatch.setattr(fc, 'FashionMNISTClassifier', small_classifier)
    monkeypatch.setattr(torch.optim, 'AdamW', RecordingAdamW)
    monkeypatch.setattr(fc, 'time', SimpleNamespace(time=lambda: rec.now[0]))
    return rec


def test_shift_translates_each_image_by_its_own_draws():
    """Offsets drawn from ``rng`` in [0, 2m]: the image moves m - offset
    down and right, -1 fills in; all offsets occur; the global RNG is not
    used."""
    images, _ = random_images(60)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    out = _shift(images, 2, torch.Generator().manual_seed(5))
    assert torch.equal(torch.get_rng_state(), state)
    draws = torch.randint(0, 5, (60, 2),
                          generator=torch.Generator().manual_seed(5))
    assert set(draws.flatten().tolist()) == {0, 1, 2, 3, 4}
    expected = [translate(image.numpy(), 2 - y, 2 - x)
                for image, (y, x) in zip(images, draws.tolist())]
    assert out.shape == images.shape
    torch.testing.assert_close(out, torch.from_numpy(np.stack(expected)),
                               rtol=0, atol=0)


def test_shift_by_one_is_within_one_pixel_and_fills_minus_one():
    images, _ = random_images(30, size=5, seed=1)
    out = _shift(images, 1, torch.Generator().manual_seed(0))
    moves = []
    for image, moved in zip(images.numpy(), out.numpy()):
        found = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                 if np.array_equal(moved, translate(image, dy, dx))]
        assert len(found) == 1
        moves.append(found[0])
    assert {m[0] for m in moves} == {-1, 0, 1}
    assert {m[1] for m in moves} == {-1, 0, 1}


def test_shift_of_non_square_images_keeps_their_shape():
    """Height and width are cropped each to its own size (the first
    version cropped both to the width)."""
    images = torch.rand(12, 3, 5, 7, generator=torch.Generator()
                        .manual_seed(2)) * 2 - 1
    out = _shift(images, 2, torch.Generator().manual_seed(3))
    draws = torch.randint(0, 5, (12, 2),
                          generator=torch.Generator().manual_seed(3))
    expected = [translate(image.numpy(), 2 - y, 2 - x)
                for image, (y, x) in zip(images, draws.tolist())]
    torch.testing.assert_close(out, torch.from_numpy(np.stack(expected)),
                               rtol=0, atol=0)


def test_accuracy_is_the_fraction_of_argmax_hits():
    torch.manual_seed(0)
    model = FashionMNISTClassifier(width=4, feature_dim=8).eval()
    images, _ = random_images(7, size=32)
    with torch.no_grad():
        pred = model(images).argmax(1)
    labels = torch.cat([pred[:4], (pred[4:] + 1) % 10])
    assert accuracy(model, images, labels) == pytest.approx(4 / 7)
    assert accuracy(model, images, pred) == 1.0


def test_save_classifier_makes_folders_and_writes_indented_json(tmp_path):
    model = FashionMNISTClassifier(width=2, feature_dim=4)
    path = tmp_path / 'a' / 'b' / 'clf.pt'
    info = dict(test_accuracy=0.5, history=[dict(epoch=1)])
    assert save_classifier(model, str(path), info) == path
    assert path.with_suffix('.json').read_text() == (
        '{\n  "test_accuracy": 0.5,\n  "history": [\n    {\n'
        '      "epoch": 1\n    }\n  ]\n}\n')
    state = torch.load(path)
    assert state.keys() == model.state_dict().keys()
    for key, value in model.state_dict().items():
        assert torch.equal(state[key], value)
    # again into the existing folder, no record
    other = save_classifier(model, path.with_name('two.pt'))
    assert other.is_file() and not other.with_suffix('.json').exists()


def test_load_split_at_the_stored_size_is_the_idx_bytes(garment_root):
    """At 28x28 nothing is resized: the images are the IDX bytes / 127.5 - 1
    on three channels, the labels int64 (conftest's cycle 0..9)."""
    images, labels = load_split(str(garment_root), 'test', size=28)
    with gzip.open(garment_root / 't10k-images-idx3-ubyte.gz') as f:
        raw = np.frombuffer(f.read()[16:], np.uint8).reshape(-1, 28, 28)
    expected = torch.from_numpy(raw.astype(np.float32) / 127.5 - 1)
    assert images.shape == (40, 3, 28, 28)
    for channel in range(3):
        torch.testing.assert_close(images[:, channel], expected)
    assert labels.dtype == torch.int64
    assert labels.tolist() == [i % 10 for i in range(40)]
    small, _ = load_split(str(garment_root), 'train', size=16)
    assert small.shape == (60, 3, 16, 16)


def test_training_run_by_hand(spy):
    """10 images in batches of 4, 4, 2 for three epochs: the inputs, the
    learning rates, the history, the result and the log lines.

    The test set is two images ten times over, labelled 0 to 9, so every
    model scores 0.1, until the labels are set to -1 after the second
    epoch: the third scores 0, and it is the one reported."""
    train = random_images(10, seed=2)
    test = (random_images(2, seed=3)[0].repeat_interleave(10, 0),
            torch.arange(10).repeat(2))
    lines = []
    accs = []

    def log(line):
        model = spy.models[0]
        assert not model.training
        spy.on[0] = False
        accs.append(hand_accuracy(model, *test))
        spy.on[0] = True
        lines.append(line)
        if len(lines) == 2:
            test[1].fill_(-1)

    model, result = train_classifier(train, test, epochs=3, batch_size=4,
                                     lr=0.05, weight_decay=0.1, max_shift=1,
                                     seed=3, log=log)
    assert model is spy.models[0] and not model.training

    batches = augmented_batches(train[0], epochs=3, batch_size=4,
                                max_shift=1, seed=3)
    assert [len(i) for i, _ in batches] == [4, 4, 2] * 3
    assert len(spy.inputs) == 9
    for (_, expected), seen in zip(batches, spy.inputs):
        torch.testing.assert_close(seen, expected, rtol=0, atol=0)

    assert [wd for _, wd in spy.steps] == [0.1] * 9
    assert [lr for lr, _ in spy.steps] == pytest.approx(one_cycle(0.05, 9))

    losses = []
    for epoch in range(3):
        per_sample = []
        for step in range(3 * epoch, 3 * epoch + 3):
            idx = batches[step][0]
            per_sample += cross_entropy(spy.logits[step], train[1][idx])
        losses.append(sum(per_sample) / len(per_sample))

    history = result['history']
    assert [sorted(h) for h in history] == \
        [['epoch', 'seconds', 'test_accuracy', 'train_loss']] * 3
    assert [h['epoch'] for h in history] == [1, 2, 3]
    assert [h['train_loss'] for h in history] == pytest.approx(losses)
    assert [h['test_accuracy'] for h in history] == pytest.approx(accs)
    assert [h['seconds'] for h in history] == [3.8, 7.6, 11.3]
    assert sorted(result) == ['history', 'test_accuracy']
    assert accs == [0.1, 0.1, 0.0]
    assert result['test_accuracy'] == 0.0

    pattern = (r'epoch (\d)/3: train loss (\d+\.\d{4}), '
               r'test accuracy (\d\.\d{4}) \((\d+) s\)')
    assert len(lines) == 3
    for epoch, line in enumerate(lines):
        m = re.fullmatch(pattern, line)
        assert m, line
        assert int(m[1]) == epoch + 1
        assert float(m[2]) == pytest.approx(losses[epoch], abs=6e-5)
        assert m[3] == f'{accs[epoch]:.4f}'
        assert m[4] == ['4', '8', '11'][epoch]


def test_training_defaults(spy):
    """Four epochs of batches of 128 (129 images: 128 + 1), peak learning
    rate 3e-3, weight decay 5e-4, shifts of up to 2 pixels, seed 0."""
    train = random_images(129, seed=4)
    _, result = train_classifier(train, random_images(5, seed=5),
                                 log=lambda line: None)
    assert [h['epoch'] for h in result['history']] == [1, 2, 3, 4]
    batches = augmented_batches(train[0], epochs=4, batch_size=128,
                                max_shift=2, seed=0)
    assert [len(x) for x in spy.inputs] == [128, 1] * 4
    for (_, expected), seen in zip(batches, spy.inputs):
        torch.testing.assert_close(seen, expected, rtol=0, atol=0)
    assert [wd for _, wd in spy.steps] == [5e-4] * 8
    assert [lr for lr, _ in spy.steps] == pytest.approx(one_cycle(3e-3, 8))


# the 23rd of the first 64 flip draws of this seed is exactly 0.5
HALF_SEED = 354891


def test_a_flip_draw_of_one_half_does_not_flip(spy):
    """Flips with probability exactly one half: the draw u flips when
    u < 0.5, so the draw 0.5 itself (one of 2^24 values) does not."""
    g = torch.Generator().manual_seed(HALF_SEED)
    torch.randperm(64, generator=g)
    assert torch.rand(64, generator=g)[22].item() == 0.5
    train = random_images(64, seed=6)
    train_classifier(train, random_images(2, seed=7), epochs=1,
                     batch_size=64, max_shift=0, seed=HALF_SEED,
                     log=lambda line: None)
    (idx, expected), = augmented_batches(train[0], epochs=1, batch_size=64,
                                         max_shift=0, seed=HALF_SEED)
    torch.testing.assert_close(spy.inputs[0], expected, rtol=0, atol=0)
    assert torch.equal(spy.inputs[0][22], train[0][idx[22]])


def test_same_seed_same_model_other_seed_another(spy):
    train, test = random_images(6, seed=8), random_images(4, seed=9)
    runs = [train_classifier(train, test, epochs=1, batch_size=3, seed=s,
                             log=lambda line: None)[0] for s in (1, 1, 2)]
    weights = [m.classifier.weight for m in runs]
    assert torch.equal(weights[0], weights[1])
    assert not torch.equal(weights[0], weights[2])


def test_training_returns_the_default_classifier_in_eval_mode():
    train, test = random_images(4, size=32, seed=10), random_images(2)
    model, result = train_classifier(train, test, epochs=1,
                                     log=lambda line: None)
    assert type(model) is FashionMNISTClassifier and not model.training
    assert model.trunk[0][0].out_channels == 16
    assert model.hidden.out_features == 128
    assert result['test_accuracy'] == hand_accuracy(model, *test)


@pytest.mark.parametrize('shape', [(2, 3, 64, 68), (2, 3, 28, 28)])
def test_prepare_averages_channels_and_resizes_antialiased(shape):
    """Other sizes are resized to 32x32, bilinear (half-pixel centres) and
    antialiased: a 64x68 image is shrunk with the wider triangle, 28x28
    grown; 32x32 is the channel mean exactly."""
    images = torch.rand(shape, generator=torch.Generator().manual_seed(11))
    images = images * 2 - 1
    gray = images.double().mean(1).numpy()
    expected = np.einsum('ih,bhw,jw->bij', resize_matrix(shape[2], 32),
                         gray, resize_matrix(shape[3], 32))
    out = FashionMNISTClassifier.prepare(images)
    assert out.shape == (2, 1, 32, 32)
    torch.testing.assert_close(out[:, 0].double(),
                               torch.from_numpy(expected), rtol=0,
                               atol=1e-6)
    square = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.equal(FashionMNISTClassifier.prepare(square),
                       square.mean(1, keepdim=True))


def test_prepare_refuses_what_is_not_a_batch():
    with pytest.raises(ValueError, match=re.escape(
            'images must be [B, C, H, W], got [3, 32, 32]')):
        FashionMNISTClassifier.prepare(torch.zeros(3, 32, 32))


def test_predict_on_no_images_gives_empty_logits_and_features():
    model = FashionMNISTClassifier(width=2, feature_dim=6).eval()
    assert model.feature_dim == 6
    logits, feats = predict(model, torch.zeros(0, 3, 32, 32))
    assert logits.shape == (0, 10) and feats.shape == (0, 6)


@pytest.mark.parametrize('shape, expected', [
    ((2, 5, 6, 3), (2, 3, 5, 6)),    # channels last
    ((2, 2, 6, 3), (2, 3, 2, 6)),    # channels last, 2 rows
    ((2, 4, 5, 3), (2, 3, 4, 5)),    # channels last, 4 rows
    ((2, 5, 3, 3), (2, 3, 5, 3)),    # channels last, 3 columns
    ((2, 5, 6, 1), (2, 1, 5, 6)),    # one channel last
    ((2, 3, 5, 6), (2, 3, 5, 6)),    # channels first
    ((2, 1, 4, 3), (2, 1, 4, 3)),    # reads both ways: channels first
    ((2, 4, 5, 6), (2, 4, 5, 6)),    # four channels first
    ((5, 6, 3), (5, 6, 3)),          # not a batch: only rescaled
])
def test_uint8_to_inputs_moves_channels_last_to_first(shape, expected):
    """A 4-D array whose last axis, not its second, has 1 or 3 entries is
    channels-last and is permuted; anything else keeps its layout. Values
    v / 127.5 - 1: 0 -> -1, 51 -> -0.6, 255 -> 1."""
    values = torch.tensor([0, 51, 255, 102, 204], dtype=torch.uint8)
    images = values[torch.arange(math.prod(shape)) % 5].reshape(shape)
    out = uint8_to_inputs(images.numpy())
    assert out.shape == expected and out.dtype == torch.float32
    if len(shape) == 4 and shape != expected:
        images = images.permute(0, 3, 1, 2)
    torch.testing.assert_close(
        out, images.double().div(127.5).sub(1).float())
    assert sorted(set(out.flatten().tolist())) == pytest.approx(
        [-1, -0.6, -0.2, 0.6, 1])


def test_uint8_to_inputs_refuses_other_dtypes():
    with pytest.raises(TypeError,
                       match='expected uint8 images, got torch.float32'):
        uint8_to_inputs(torch.zeros(1, 3, 4, 4))


def test_missing_weights_say_how_to_make_them(tmp_path):
    missing = tmp_path / 'none.pt'
    with pytest.raises(FileNotFoundError, match=re.escape(
            f'Fashion-MNIST classifier weights not found: {missing}. Train '
            'them with tools/train_fmnist_classifier.py')):
        load_fmnist_classifier(missing)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_weights_load_onto_the_device_asked_for():
    model = load_fmnist_classifier(device='cuda')
    assert {p.device.type for p in model.parameters()} == {'cuda'}
    assert not model.training
