"""Generation inputs, metrics and outputs (fqzoo/generation/inputs.py,
fidelity.py, classifier_metrics.py, outputs.py, evaluate.py): behaviour
that mutation testing showed no test pinned down (docs/testing.md lists
the mutants these tests kill).

References are worked out another way: ADM's ``center_crop_arr`` steps
written out with PIL, crop offsets rounded down by hand, Fashion-MNIST
images read through the fqzoo dataset, accuracies counted by hand, and
every user-facing message written out in full.
"""
import itertools
import json
import pickle
import re
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import fqzoo.generation.classifier_metrics as classifier_metrics
import fqzoo.generation.evaluate as evaluate
import fqzoo.generation.fidelity as fidelity
from fqzoo.datasets import FashionMNIST
from fqzoo.evaluation.fmnist_classifier import (
    FashionMNISTClassifier,
    predict,
    save_classifier,
    uint8_to_inputs,
)
from fqzoo.generation.classifier_metrics import class_accuracy, fmnist_metrics
from fqzoo.generation.inputs import (
    UInt8Images,
    check_images,
    load_fashion_mnist_images,
    load_image_folder,
    load_reference,
    load_samples,
)
from fqzoo.generation.outputs import (
    assemble_outputs,
    samples_complete,
    timings,
    write_grids,
)
from fqzoo.generation.shards import shard_path, write_shard
from fqzoo.utils.images import to_uint8


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _ramp(height: int, width: int) -> np.ndarray:
    """uint8 [height, width, 3]: every pixel differs from its neighbours."""
    y, x = np.mgrid[:height, :width]
    return np.stack([x * 20 + y, y * 20 + x, (x * 7 + y * 13) % 256],
                    -1).astype(np.uint8)


# ---------------------------------------------------------------- inputs

def test_a_shorter_side_of_exactly_twice_the_size_is_halved_first(tmp_path):
    """ADM halves while the shorter side is >= 2 * size: 12x15 at size 6
    is box-halved to 6x7 (then bicubic at scale 1 changes nothing) and
    its centre column range starts at (7 - 6) // 2 = 0."""
    array = _ramp(12, 15)
    _png(tmp_path / 'a.png', array)
    got = load_image_folder(tmp_path, size=6)[0]
    halved = np.asarray(Image.fromarray(array).resize((7, 6), Image.BOX))
    np.testing.assert_array_equal(got, halved[:, :6])
    direct = np.asarray(Image.fromarray(array).resize((8, 6),
                                                      Image.BICUBIC))
    assert not np.array_equal(got, direct[:, 1:7])


@pytest.mark.parametrize('shape', [(6, 9), (9, 6), (6, 13), (13, 6)])
def test_the_centre_crop_offset_is_rounded_down(tmp_path, shape):
    """A margin of 3 (or 7) pixels: the crop starts at 1 (or 3), not at
    round(1.5) = 2 (or round(3.5) = 4)."""
    array = _ramp(*shape)
    _png(tmp_path / 'a.png', array)
    got = load_image_folder(tmp_path, size=6)[0]
    top, left = (shape[0] - 6) // 2, (shape[1] - 6) // 2
    np.testing.assert_array_equal(got, array[top:top + 6, left:left + 6])


def test_gray_and_rgba_files_are_read_as_rgb(tmp_path):
    gray = _ramp(4, 4)[..., 0]
    rgba = np.concatenate([_ramp(4, 4), np.full((4, 4, 1), 7, np.uint8)],
                          -1)
    _png(tmp_path / 'a.png', gray)
    _png(tmp_path / 'b.png', rgba)
    images = load_image_folder(tmp_path)
    assert images.shape == (2, 4, 4, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[0], np.repeat(gray[..., None], 3,
                                                       -1))
    np.testing.assert_array_equal(images[1], rgba[..., :3])


def test_an_empty_folder_is_refused_with_the_extensions(tmp_path):
    (tmp_path / 'notes.txt').write_text('not an image')
    with pytest.raises(FileNotFoundError) as err:
        load_image_folder(tmp_path)
    assert str(err.value) == (
        'No images (.jpg, .jpeg, .png, .ppm, .bmp, .pgm, .tif, .tiff, '
        f'.webp) under {tmp_path}')


def test_images_of_two_sizes_name_both(tmp_path):
    _png(tmp_path / 'a.png', _ramp(5, 4))
    _png(tmp_path / 'b.png', _ramp(3, 7))
    with pytest.raises(ValueError) as err:
        load_image_folder(tmp_path)
    assert str(err.value) == (
        f'{tmp_path / "b.png"} is 7x3, {tmp_path / "a.png"} is 4x5: pass a '
        'reference size to resize and crop them all')
    _png(tmp_path / 'a.png', _ramp(3, 7))
    _png(tmp_path / 'c.png', _ramp(5, 4))
    with pytest.raises(ValueError) as err:
        load_image_folder(tmp_path)
    assert str(err.value) == (
        f'{tmp_path / "c.png"} is 4x5, {tmp_path / "a.png"} is 7x3: pass a '
        'reference size to resize and crop them all')


def test_fashion_mnist_images_at_the_size_asked(garment_root):
    """The fqzoo dataset's images at 16 px, gray replicated to RGB."""
    images, labels = load_fashion_mnist_images('test', 16, str(garment_root))
    dataset = FashionMNIST(data_root=str(garment_root), split='test',
                           image_size=16)
    assert images.shape == (len(dataset), 16, 16, 3)
    assert images.dtype == np.uint8
    for i in (0, 7):
        expected = to_uint8(dataset[i]['inputs']).permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(images[i], expected)
    np.testing.assert_array_equal(labels, dataset.labels)


def test_a_fashion_mnist_reference(garment_root):
    """``fashion-mnist:train`` of the folder given, at ``size``: the
    images, not the labels."""
    ref = load_reference('fashion-mnist:train', size=16,
                         fmnist_root=str(garment_root))
    dataset = FashionMNIST(data_root=str(garment_root), split='train',
                           image_size=16)
    assert ref.shape == (60, 16, 16, 3) and ref.dtype == np.uint8
    expected = to_uint8(dataset[3]['inputs']).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(ref[3], expected)
    with pytest.raises(ValueError) as err:
        load_reference('fashion-mnist:test', fmnist_root=str(garment_root))
    assert str(err.value) == 'fashion-mnist references need the image size'


def test_a_reference_npz_is_checked_with_messages(tmp_path):
    np.savez(tmp_path / 'ref.npz', images=np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(KeyError) as err:
        load_reference(tmp_path / 'ref.npz')
    assert err.value.args[0] == \
        f'{tmp_path / "ref.npz"} has no arr_0 (reference images)'
    np.savez(tmp_path / 'gray.npz', np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(ValueError) as err:
        load_reference(tmp_path / 'gray.npz')
    assert str(err.value) == (
        f'{tmp_path / "gray.npz"}: arr_0 must be uint8 [N, H, W, 3] with '
        'N >= 1, got uint8 [2, 4, 4]')


# ---------------------------------------------------- classifier metrics

def test_class_accuracy_flattens_both_sides():
    """[2, 2] predictions against [4] labels and the reverse: 3 of 4."""
    preds, labels = np.array([[0, 1], [1, 1]]), np.array([0, 0, 1, 1])
    for p, lab in ((preds, labels), (preds.reshape(-1), labels.reshape(2, 2))):
        acc = class_accuracy(p, lab)
        assert acc == dict(accuracy=0.75, per_class={0: 0.5, 1: 1.0})


def test_class_accuracy_of_one_class_and_of_a_missing_one():
    """All samples of class 1, all right: 1.0; class 4 has none: NaN,
    without numpy's empty-mean warning."""
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        acc = class_accuracy([1, 1, 1], [1, 1, 1], classes=[1, 4])
    assert acc['accuracy'] == 1.0 and acc['per_class'][1] == 1.0
    assert np.isnan(acc['per_class'][4])


@pytest.fixture
def other_classifier(tmp_path):
    """A small untrained classifier saved to a file."""
    torch.manual_seed(3)
    model = FashionMNISTClassifier(width=4, feature_dim=8).eval()
    return model, save_classifier(model, tmp_path / 'clf.pt')


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")
def test_fmnist_metrics_use_the_checkpoint_device_and_batch_size(
        other_classifier, monkeypatch):
    """The classifier file given scores the samples; it is loaded on the
    device given; both image sets go through it ``batch_size`` at a
    time (500 by default)."""
    model, path = other_classifier
    rng = np.random.default_rng(0)
    samples = rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    reference = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    labels = np.array([0, 1, 2, 3, 4, 5, 6])
    with torch.no_grad():
        preds = model(uint8_to_inputs(samples)).argmax(1).numpy()
    calls = []
    real_load = classifier_metrics.load_fmnist_classifier

    def load(*args, **kwargs):
        calls.append(('load', args, kwargs))
        return real_load(*args, **kwargs)

    def batched(model, images, batch_size=None):
        calls.append(('predict', len(images), batch_size))
        return predict(model, images, batch_size)

    monkeypatch.setattr(classifier_metrics, 'load_fmnist_classifier', load)
    monkeypatch.setattr(classifier_metrics, 'predict', batched)
    out = fmnist_metrics(samples, labels, checkpoint=str(path),
                         reference=reference, device='cpu', batch_size=3)
    assert out['fmnist_class_accuracy'] == pytest.approx(
        float((preds == labels).mean()))
    assert calls == [('load', (str(path), 'cpu'), {}),
                     ('predict', 7, 3), ('predict', 5, 3)]
    calls.clear()
    fmnist_metrics(samples, labels, checkpoint=str(path),
                   reference=reference)
    assert calls[1:] == [('predict', 7, 500), ('predict', 5, 500)]


# ------------------------------------------------------ inception metrics

def _fake_torch_fidelity(calls):
    """Stands in for torch-fidelity's calculate_metrics: records its
    arguments and answers the keys of the metrics asked for."""
    def calculate_metrics(**kwargs):
        calls.append(kwargs)
        out = {}
        if kwargs['fid']:
            out['frechet_inception_distance'] = 12.5
        if kwargs['isc']:
            out.update(inception_score_mean=3.25, inception_score_std=0.5)
        if kwargs['prc']:
            out.update(precision=0.75, recall=0.625, f_score=0.68)
        return out

    return type('FakeTorchFidelity', (), dict(
        calculate_metrics=staticmethod(calculate_metrics)))


def test_inception_metrics_names_and_arguments(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(fidelity, 'import_torch_fidelity',
                        lambda: _fake_torch_fidelity(calls))
    samples = np.full((4, 8, 8, 3), 9, np.uint8)
    reference = np.full((5, 8, 8, 3), 200, np.uint8)
    weights = tmp_path / 'inception.pth'
    torch.save({'w': torch.ones(2)}, weights)
    out = fidelity.inception_metrics(
        samples, reference, ['fid', 'is', 'prc'],
        inception_checkpoint=str(weights), batch_size=3)
    assert out == {'gfid': 12.5, 'is': 3.25, 'is_std': 0.5,
                   'precision': 0.75, 'recall': 0.625}
    assert all(type(v) is float for v in out.values())
    (call,) = calls
    assert call['fid'] is True and call['isc'] is True and \
        call['prc'] is True
    assert call['feature_extractor'] == 'inception-v3-compat'
    assert call['feature_extractor_weights_path'] == str(weights)
    assert call['batch_size'] == 3
    assert np.array_equal(call['input1'].images, samples)
    assert np.array_equal(call['input2'].images, reference)
    for asked, keys in ((['fid'], {'gfid'}), (['is'], {'is', 'is_std'}),
                        (['prc'], {'precision', 'recall'})):
        assert set(fidelity.inception_metrics(samples, reference,
                                              asked)) == keys


def test_inception_metrics_check_the_weights_file(tmp_path, monkeypatch):
    """A weights file that is not tensors only is refused before
    torch-fidelity unpickles it."""
    calls = []
    monkeypatch.setattr(fidelity, 'import_torch_fidelity',
                        lambda: _fake_torch_fidelity(calls))
    weights = tmp_path / 'inception.pth'
    torch.save({'w': re.compile('x')}, weights)
    images = np.full((2, 8, 8, 3), 9, np.uint8)
    with pytest.raises(pickle.UnpicklingError, match='Weights only load'):
        fidelity.inception_metrics(images, images, ['is'],
                                   inception_checkpoint=str(weights))
    assert calls == []


def test_fidelity_metrics_defaults(monkeypatch):
    """The docstring's defaults reach torch-fidelity: no metric, the
    Inception extractor, CPU, 64 per batch, 10 IS splits, k = 3, no
    cache, quiet; the reference only goes in when a metric needs it."""
    calls = []
    monkeypatch.setattr(fidelity, 'import_torch_fidelity',
                        lambda: _fake_torch_fidelity(calls))
    samples = np.full((12, 8, 8, 3), 9, np.uint8)
    reference = np.full((5, 8, 8, 3), 200, np.uint8)
    assert fidelity.fidelity_metrics(samples, reference) == {}
    (call,) = calls
    assert np.array_equal(call.pop('input1').images, samples)
    assert call == dict(
        fid=False, isc=False, prc=False,
        feature_extractor='inception-v3-compat',
        feature_extractor_weights_path=None, cuda=False, batch_size=64,
        isc_splits=10, prc_neighborhood=3, cache=False, save_cpu_ram=True,
        verbose=False)
    for key in ('fid', 'isc', 'prc'):
        assert type(call[key]) is bool


def test_fidelity_metrics_pass_their_arguments(monkeypatch):
    calls = []
    monkeypatch.setattr(fidelity, 'import_torch_fidelity',
                        lambda: _fake_torch_fidelity(calls))
    samples = np.full((3, 8, 8, 3), 9, np.uint8)
    reference = np.full((5, 8, 8, 3), 200, np.uint8)
    out = fidelity.fidelity_metrics(
        samples, reference, feature_extractor='effnet-lite0-offline',
        weights_path='w.pt', fid=True, isc=True, prc=True, device='cuda',
        batch_size=7, isc_splits=4, prc_neighborhood=5, verbose=True)
    assert out['frechet_inception_distance'] == 12.5
    call = calls.pop()
    assert np.array_equal(call.pop('input1').images, samples)
    assert np.array_equal(call.pop('input2').images, reference)
    assert call == dict(
        fid=True, isc=True, prc=True,
        feature_extractor='effnet-lite0-offline',
        feature_extractor_weights_path='w.pt', cuda=True, batch_size=7,
        isc_splits=3, prc_neighborhood=5, cache=False, save_cpu_ram=True,
        verbose=True)
    # IS splits: at most one per sample, at least one
    fidelity.fidelity_metrics(samples[:1], None, isc=True, isc_splits=4)
    assert calls.pop()['isc_splits'] == 1
    fidelity.fidelity_metrics(samples, None, isc=True, isc_splits=0)
    assert calls.pop()['isc_splits'] == 1
    # each of fid and prc alone takes the reference; IS alone does not
    for flags in (dict(fid=True), dict(prc=True)):
        fidelity.fidelity_metrics(samples, reference, **flags)
        assert np.array_equal(calls.pop()['input2'].images, reference)
    fidelity.fidelity_metrics(samples, reference, isc=True)
    assert 'input2' not in calls.pop()
    fidelity.fidelity_metrics(samples, None, isc=True)
    assert 'input2' not in calls.pop()


@pytest.mark.parametrize('flags', [dict(fid=True), dict(prc=True),
                                   dict(fid=True, prc=True)])
def test_fid_and_prc_refuse_no_reference(flags):
    images = np.full((2, 8, 8, 3), 9, np.uint8)
    with pytest.raises(ValueError) as err:
        fidelity.fidelity_metrics(images, None, **flags)
    assert str(err.value) == 'fid and prc need reference images'


def test_offline_fid_arguments(monkeypatch):
    calls = []
    monkeypatch.setattr(fidelity, 'import_torch_fidelity',
                        lambda: _fake_torch_fidelity(calls))
    samples = np.full((3, 8, 8, 3), 9, np.uint8)
    reference = np.full((5, 8, 8, 3), 200, np.uint8)
    out = fidelity.offline_fid(samples, reference, checkpoint='e.pt',
                               batch_size=2)
    assert out == {'fid_effnet_offline': 12.5}
    assert type(out['fid_effnet_offline']) is float
    (call,) = calls
    assert np.array_equal(call['input1'].images, samples)
    assert np.array_equal(call['input2'].images, reference)
    assert call['feature_extractor'] == 'effnet-lite0-offline'
    assert call['feature_extractor_weights_path'] == 'e.pt'
    assert call['fid'] is True and call['batch_size'] == 2


# ------------------------------------------------------- checked arrays

@pytest.mark.parametrize('shape', [(1, 4, 5, 3), (2, 3, 4, 3),
                                   (2, 5, 3, 3)])
def test_check_images_accepts_uint8_rgb(shape):
    images = np.ones(shape, np.uint8)
    assert check_images(images, 'x') is images
    assert len(UInt8Images(images)) == shape[0]


@pytest.mark.parametrize('images, got', [
    (np.ones((2, 4, 4, 3), np.float32), 'float32 [2, 4, 4, 3]'),
    (np.ones((4, 4, 3), np.uint8), 'uint8 [4, 4, 3]'),
    (np.ones((2, 4, 4, 4), np.uint8), 'uint8 [2, 4, 4, 4]'),
    (np.ones((0, 4, 4, 3), np.uint8), 'uint8 [0, 4, 4, 3]')])
def test_check_images_refuses_with_the_name(images, got):
    with pytest.raises(ValueError) as err:
        check_images(images, 'my: arr_0')
    assert str(err.value) == \
        f'my: arr_0 must be uint8 [N, H, W, 3] with N >= 1, got {got}'
    with pytest.raises(ValueError) as err:
        UInt8Images(images)
    assert str(err.value) == \
        f'images must be uint8 [N, H, W, 3] with N >= 1, got {got}'


def test_uint8_images_items_are_channels_first():
    images = _ramp(4, 6)[None].repeat(2, 0)
    images[1] += 1
    flipped = images[:, :, ::-1]             # not contiguous
    data = UInt8Images(flipped)
    item = data[1]
    assert item.shape == (3, 4, 6) and item.dtype == torch.uint8
    for c in range(3):
        np.testing.assert_array_equal(item[c].numpy(), flipped[1, :, :, c])


def test_load_samples_messages_and_labels(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (3, 4, 4, 3),
                                               dtype=np.uint8)
    np.savez(tmp_path / 's.npz', images, np.array([2, 0, 1], np.uint8))
    loaded, labels = load_samples(tmp_path / 's.npz')
    np.testing.assert_array_equal(loaded, images)
    assert labels.dtype == np.int64 and labels.tolist() == [2, 0, 1]
    np.savez(tmp_path / 'nolabels.npz', images)
    assert load_samples(tmp_path / 'nolabels.npz')[1] is None
    np.savez(tmp_path / 'two.npz', images, np.array([2, 0]))
    with pytest.raises(ValueError) as err:
        load_samples(tmp_path / 'two.npz')
    assert str(err.value) == (f'{tmp_path / "two.npz"}: arr_1 has shape '
                              '[2], expected one label per image (3)')
    np.savez(tmp_path / 'named.npz', images=images)
    with pytest.raises(KeyError) as err:
        load_samples(tmp_path / 'named.npz')
    assert err.value.args[0] == (
        f'{tmp_path / "named.npz"} has no arr_0 (uint8 [N, H, W, 3] '
        'images): not a samples .npz')
    np.savez(tmp_path / 'gray.npz', images[..., 0])
    with pytest.raises(ValueError) as err:
        load_samples(tmp_path / 'gray.npz')
    assert str(err.value) == (
        f'{tmp_path / "gray.npz"}: arr_0 must be uint8 [N, H, W, 3] with '
        'N >= 1, got uint8 [3, 4, 4]')
    whole = (tmp_path / 's.npz').read_bytes()
    (tmp_path / 'cut.npz').write_bytes(whole[:len(whole) // 2])
    with pytest.raises(ValueError) as err:
        load_samples(tmp_path / 'cut.npz')
    message = str(err.value)
    assert 'cut.npz' in message and message.endswith(
        '. If tools/sample.py wrote it, run the same command again: it '
        'rewrites a samples.npz that is not whole from its shards')


# ------------------------------------------------------------- evaluate

@pytest.fixture
def fake_metrics(monkeypatch):
    """evaluate's metric functions replaced by recorders answering fixed
    numbers, and its clock by one that reads 100 s, then 101.23456 s
    (then 200 s)."""
    calls = {}

    def recorder(name, answer):
        def fn(*args, **kwargs):
            calls[name] = (args, kwargs)
            return dict(answer)
        return fn

    monkeypatch.setattr(evaluate, 'inception_metrics', recorder(
        'inception', dict(gfid=1.5, **{'is': 2.5})))
    monkeypatch.setattr(evaluate, 'offline_fid', recorder(
        'offline', dict(fid_effnet_offline=3.5)))
    monkeypatch.setattr(evaluate, 'fmnist_metrics', recorder(
        'fmnist', dict(fmnist_class_accuracy=0.5, fid_fmnist_classifier=4.5)))
    clock = itertools.chain([100.0, 101.23456], itertools.repeat(200.0))
    monkeypatch.setattr(evaluate, 'time',
                        SimpleNamespace(time=lambda: next(clock)))
    return calls


def _samples_npz(path, labels=True):
    images = np.stack([_ramp(8, 6) + i for i in range(4)])
    np.savez(path, images, *([np.array([3, 1, 0, 1])] if labels else []))
    return images


def test_evaluate_everything_against_fashion_mnist(tmp_path, fake_metrics,
                                                   garment_root):
    """A Fashion-MNIST reference at the samples' height (8 for 8x6
    samples); every metric gets its options; the record says what was
    compared with what."""
    images = _samples_npz(tmp_path / 's.npz')
    out = evaluate.evaluate_samples(
        tmp_path / 's.npz', 'fashion-mnist:test', metrics=['fid', 'is'],
        inception_checkpoint='inc.pth', offline=True, fmnist_classifier=True,
        classifier_checkpoint='clf.pt', fmnist_root=str(garment_root),
        device='cuda', batch_size=5)
    reference = load_reference('fashion-mnist:test', size=8,
                               fmnist_root=str(garment_root))
    assert reference.shape == (40, 8, 8, 3)
    comparable = out.pop('comparable')
    assert out == dict(
        metrics=dict(gfid=1.5, fid_effnet_offline=3.5,
                     fmnist_class_accuracy=0.5, fid_fmnist_classifier=4.5,
                     **{'is': 2.5}),
        samples=dict(path=str(tmp_path / 's.npz'), count=4, shape=[8, 6, 3]),
        reference=dict(ref='fashion-mnist:test', count=40, shape=[8, 8, 3]),
        inception_checkpoint='inc.pth',
        classifier=dict(checkpoint='clf.pt', reference='fashion-mnist:test'),
        seconds=1.23)
    assert set(comparable) == {'gfid', 'fid_effnet_offline',
                               'fid_fmnist_classifier'}
    assert 'never with published FID' in comparable['fid_effnet_offline']
    (args, kwargs) = fake_metrics['inception']
    assert np.array_equal(args[0], images)
    assert np.array_equal(args[1], reference) and args[2] == ['fid', 'is']
    assert kwargs == dict(inception_checkpoint='inc.pth', device='cuda',
                          batch_size=5)
    (args, kwargs) = fake_metrics['offline']
    assert np.array_equal(args[0], images)
    assert np.array_equal(args[1], reference)
    assert kwargs == dict(device='cuda', batch_size=5)
    (args, kwargs) = fake_metrics['fmnist']
    assert np.array_equal(args[0], images)
    assert args[1].tolist() == [3, 1, 0, 1]
    assert kwargs == dict(checkpoint='clf.pt', fmnist_root=str(garment_root),
                          device='cuda')


def test_evaluate_defaults(tmp_path, fake_metrics):
    """All three Inception metrics, on the CPU, 64 per batch; no offline
    FID, no classifier metrics; a folder reference kept at its size."""
    _samples_npz(tmp_path / 's.npz')
    for name in 'ab':
        _png(tmp_path / 'ref' / f'{name}.png', _ramp(4, 4))
    out = evaluate.evaluate_samples(tmp_path / 's.npz', str(tmp_path / 'ref'))
    (args, kwargs) = fake_metrics.pop('inception')
    assert tuple(args[2]) == ('fid', 'is', 'prc')
    assert args[1].shape == (2, 4, 4, 3)
    assert kwargs == dict(inception_checkpoint=None, device='cpu',
                          batch_size=64)
    assert fake_metrics == {}
    assert out['classifier'] is None and out['inception_checkpoint'] is None
    assert out['reference'] == dict(ref=str(tmp_path / 'ref'), count=2,
                                    shape=[4, 4, 3])
    assert out['metrics'] == {'gfid': 1.5, 'is': 2.5}
    assert set(out['comparable']) == {'gfid'}


def test_evaluate_a_folder_reference_at_ref_size(tmp_path, fake_metrics):
    _samples_npz(tmp_path / 's.npz')
    _png(tmp_path / 'ref' / 'a.png', _ramp(6, 9))
    _png(tmp_path / 'ref' / 'b.png', _ramp(9, 7))
    out = evaluate.evaluate_samples(tmp_path / 's.npz', str(tmp_path / 'ref'),
                                    metrics=['prc'], ref_size=5)
    assert out['reference']['shape'] == [5, 5, 3]
    assert fake_metrics['inception'][0][1].shape == (2, 5, 5, 3)


def test_evaluate_asks_for_a_reference_only_when_needed(tmp_path,
                                                        fake_metrics):
    _samples_npz(tmp_path / 's.npz', labels=False)
    for kwargs in (dict(metrics=['prc']), dict(metrics=['fid']),
                   dict(metrics=[], offline=True), dict()):
        with pytest.raises(ValueError) as err:
            evaluate.evaluate_samples(tmp_path / 's.npz', **kwargs)
        assert str(err.value) == 'fid, prc and the offline FID need --ref'
    out = evaluate.evaluate_samples(tmp_path / 's.npz', metrics=['is'])
    assert out['reference'] is None
    assert fake_metrics['inception'][0][1] is None
    with pytest.raises(ValueError) as err:
        evaluate.evaluate_samples(tmp_path / 's.npz', metrics=[],
                                  fmnist_classifier=True)
    assert str(err.value) == (f'{tmp_path / "s.npz"} has no labels (arr_1): '
                              'the classifier metrics need them')


def test_evaluate_with_the_shipped_classifier(tmp_path, fake_metrics):
    _samples_npz(tmp_path / 's.npz')
    out = evaluate.evaluate_samples(tmp_path / 's.npz', metrics=[],
                                    fmnist_classifier=True)
    assert out['classifier'] == dict(checkpoint='shipped',
                                     reference='fashion-mnist:test')
    assert fake_metrics['fmnist'][1] == dict(checkpoint=None,
                                             fmnist_root=None, device='cpu')


# -------------------------------------------------------------- outputs

def test_timings_by_hand():
    """2.5 s drawing, 0.5 s decoding, 6 images of 16 positions: 2 images
    and 38.4 tokens a second; seconds kept to 3 decimals."""
    got = timings(2.5, 0.5, 6, 16, 'a note')
    assert got == dict(generate_seconds=2.5, decode_seconds=0.5,
                       images_per_s=2.0, tokens_per_s=38.4, note='a note')
    got = timings(1.23456, 0.98765, 7, 3, 'n')
    assert got['generate_seconds'] == 1.235
    assert got['decode_seconds'] == 0.988
    assert got['images_per_s'] == 3.15           # 7 / 2.22221 = 3.15002
    assert got['tokens_per_s'] == 17.01           # 21 / 1.23456 = 17.0101
    # under a second: no floor at one second; no time at all: 1e-9 s
    got = timings(0.5, 0.25, 3, 4, 'n')
    assert got['images_per_s'] == 4.0 and got['tokens_per_s'] == 24.0
    got = timings(0, 0, 3, 4, 'n')
    assert got['images_per_s'] == 3e9 and got['tokens_per_s'] == 1.2e10


def test_samples_complete(tmp_path):
    images = np.zeros((3, 2, 2, 3), np.uint8)
    path = tmp_path / 'samples.npz'
    assert not samples_complete(path, 3)
    np.savez(path, images, np.arange(3))
    assert samples_complete(path, 3)
    assert not samples_complete(path, 2)
    np.savez(path, images, np.arange(3), np.arange(5))
    assert samples_complete(path, 3)            # more arrays: still whole
    np.savez(path, images, np.arange(2))
    assert not samples_complete(path, 3)
    np.savez(path, images[:2], np.arange(3))
    assert not samples_complete(path, 3)
    np.savez(path, images)
    assert not samples_complete(path, 3)
    np.savez(path, arr_1=np.arange(3))
    assert not samples_complete(path, 3)
    np.savez(path, images, np.arange(3))
    whole = path.read_bytes()
    path.write_bytes(whole[:-40])
    assert not samples_complete(path, 3)


def _hand_grid(images, ncol, scale):
    """White canvas, 2 px padding, ``ncol`` images a row, each upscaled
    ``scale`` times (nearest); one image alone is padded too."""
    height, width = images[0].shape[:2]
    cell_h, cell_w = scale * height + 2, scale * width + 2
    ncol = min(ncol, len(images))
    rows = -(-len(images) // ncol)
    canvas = np.full((rows * cell_h + 2, ncol * cell_w + 2, 3), 255,
                     np.uint8)
    for k, image in enumerate(images):
        top, left = 2 + (k // ncol) * cell_h, 2 + (k % ncol) * cell_w
        big = image.repeat(scale, 0).repeat(scale, 1)
        canvas[top:top + scale * height, left:left + scale * width] = big
    return canvas


def _read(path):
    return np.asarray(Image.open(path).convert('RGB'))


@pytest.mark.parametrize('cols', [2, 4])
def test_write_grids_by_hand(tmp_path, cols):
    """13x7 images: upscaled 64 // 13 = 4 times; only the first two
    classes asked for get grids; grid.png has the first ``cols`` of each
    class in rows of min(cols, 3)."""
    def image(seed):
        return _ramp(13, 7) + np.uint8(seed * 17)

    firsts = {3: [image(0), image(1), image(2)], 1: [image(3), image(4)],
              5: [image(5)]}
    names = write_grids(tmp_path, firsts, cols=cols, max_classes=2)
    assert names == ['grid_class_3.png', 'grid_class_1.png', 'grid.png']
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    np.testing.assert_array_equal(_read(tmp_path / 'grid_class_3.png'),
                                  _hand_grid(firsts[3], cols, 4))
    np.testing.assert_array_equal(_read(tmp_path / 'grid_class_1.png'),
                                  _hand_grid(firsts[1], cols, 4))
    rows = firsts[3][:cols] + firsts[1][:cols]
    np.testing.assert_array_equal(_read(tmp_path / 'grid.png'),
                                  _hand_grid(rows, min(cols, 3), 4))


def test_write_grids_defaults_and_edge_cases(tmp_path):
    """8 a row and 50 classes by default; images of 40 px or more are
    not upscaled; one class of one image; no class, no file."""
    firsts = {c: [_ramp(40, 3) + np.uint8(c + i) for i in range(9)]
              for c in range(51)}
    names = write_grids(tmp_path / 'many', firsts)
    assert len(names) == 51 and names[-1] == 'grid.png'
    assert not (tmp_path / 'many' / 'grid_class_50.png').exists()
    np.testing.assert_array_equal(
        _read(tmp_path / 'many' / 'grid_class_7.png'),
        _hand_grid(firsts[7], 8, 1))
    assert _read(tmp_path / 'many' / 'grid.png').shape == \
        (50 * 42 + 2, 8 * 5 + 2, 3)
    one = {2: [_ramp(13, 7)]}
    assert write_grids(tmp_path / 'one', one) == ['grid_class_2.png',
                                                  'grid.png']
    np.testing.assert_array_equal(_read(tmp_path / 'one' / 'grid.png'),
                                  _hand_grid(one[2], 1, 4))
    assert write_grids(tmp_path / 'none', {}) == []
    assert not (tmp_path / 'none').exists()


def _shards(out_dir, parts):
    """Write one shard per (labels, seconds) of ``parts``: random 6x4
    images and int16 [2, 5] tokens; returns images and labels."""
    rng = np.random.default_rng(0)
    images, labels = [], []
    for i, (part, seconds) in enumerate(parts):
        part = np.array(part)
        imgs = rng.integers(0, 256, (len(part), 6, 4, 3), dtype=np.uint8)
        write_shard(shard_path(out_dir, i), images=imgs, labels=part,
                    tokens=np.zeros((len(part), 2, 5), np.int16),
                    seconds=np.array(seconds))
        images.append(imgs)
        labels.append(part)
    return np.concatenate(images), np.concatenate(labels)


def test_assemble_outputs_by_hand(tmp_path):
    """Two shards (3 + 2 samples, 1.5 + 0.5 s drawing, 0.25 + 0.5 s
    decoding): the samples in order, the 3 of class 2 in its grid, 2 a
    row (upscaled 64 // 6 = 10 times), 2 of them in grid.png, a record of
    every field."""
    images, labels = _shards(tmp_path, [([2, 5, 2], [1.5, 0.25]),
                                        ([0, 2], [0.5, 0.5])])
    record = assemble_outputs(
        tmp_path, labels, [(0, 3), (3, 5)], [2, 0], record=dict(seed=7),
        positions=10, grid_per_class=3, grid_cols=2, grid_max_classes=1)
    assert record == dict(
        seed=7, samples='samples.npz', num=5, classes=[2, 0],
        per_class={'2': 3, '0': 1}, image_shape=[6, 4, 3],
        token_shape=[2, 5], token_dtype='int16',
        timings=dict(
            generate_seconds=2.0, decode_seconds=0.75, images_per_s=1.818,
            tokens_per_s=25.0,
            note="summed over shards (one process's time; several "
                 'processes draw world_size times faster); a token is one '
                 'position (its G sub-tokens together)'),
        shards=[dict(file='shard_00000.npz', start=0, count=3),
                dict(file='shard_00001.npz', start=3, count=2)],
        grids=['grid_class_2.png', 'grid.png'])
    assert json.loads((tmp_path / 'sampling.json').read_text()) == record
    with np.load(tmp_path / 'samples.npz') as data:
        assert sorted(data.files) == ['arr_0', 'arr_1']
        np.testing.assert_array_equal(data['arr_0'], images)
        assert data['arr_1'].dtype == np.int64
        assert data['arr_1'].tolist() == [2, 5, 2, 0, 2]
    np.testing.assert_array_equal(
        _read(tmp_path / 'grid_class_2.png'),
        _hand_grid([images[0], images[2], images[4]], 2, 10))
    np.testing.assert_array_equal(_read(tmp_path / 'grid.png'),
                                  _hand_grid([images[0], images[2]], 2, 10))
    assert not (tmp_path / 'grid_class_0.png').exists()


def test_assemble_outputs_grid_defaults(tmp_path):
    """64 samples a class grid in rows of 8, grids for 50 classes."""
    labels = [0] * 65 + list(range(1, 51))
    _shards(tmp_path, [(labels, [1.0, 1.0])])
    record = assemble_outputs(tmp_path, np.array(labels), [(0, 115)],
                              list(range(51)), record={}, positions=1)
    assert len(record['grids']) == 51
    assert not (tmp_path / 'grid_class_50.png').exists()
    # 64 images of 6x4 upscaled 10 times, 8 a row: 8 rows
    assert _read(tmp_path / 'grid_class_0.png').shape == \
        (8 * 62 + 2, 8 * 42 + 2, 3)


def test_assemble_outputs_of_no_samples(tmp_path):
    """No shard to stream (no range, no class): an empty samples.npz, no
    grid, zero timings and an empty token shape and dtype."""
    _shards(tmp_path, [([1], [1.0, 1.0])])
    record = assemble_outputs(tmp_path, np.zeros(0, np.int64), [], [],
                              record={}, positions=4)
    assert record['num'] == 0 and record['grids'] == []
    assert record['token_shape'] == [] and record['token_dtype'] == ''
    assert record['timings']['generate_seconds'] == 0.0
    assert record['shards'] == [] and record['image_shape'] == [6, 4, 3]
    with np.load(tmp_path / 'samples.npz') as data:
        assert data['arr_0'].shape == (0, 6, 4, 3)
