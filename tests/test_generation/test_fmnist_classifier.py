"""The shipped Fashion-MNIST classifier and its metrics: on the test
session's garment drawings everywhere, on real images where the dataset is
installed (the others skip)."""
import numpy as np
import pytest
import torch

from fqzoo.datasets import FashionMNIST
from fqzoo.evaluation.fmnist_classifier import (
    DEFAULT_CHECKPOINT,
    FashionMNISTClassifier,
    load_fmnist_classifier,
    predict,
    save_classifier,
    uint8_to_inputs,
)
from fqzoo.generation.classifier_metrics import fmnist_metrics
from fqzoo.utils.images import to_uint8


def _first_images(root: str, count: int = 40):
    """The first ``count`` test images of the Fashion-MNIST folder ``root``
    as the fqzoo dataset gives them ([3, 32, 32] in [-1, 1]) and their
    labels."""
    dataset = FashionMNIST(data_root=str(root), split='test')
    images = torch.stack([dataset[i]['inputs'] for i in range(count)])
    return images, torch.from_numpy(dataset.labels[:count].astype(np.int64))


@pytest.fixture(scope='module')
def test_images(real_fmnist_root):
    """The first 40 real Fashion-MNIST test images (skips without them)."""
    return _first_images(real_fmnist_root)


@pytest.fixture(scope='module')
def garments(garment_root):
    """The 40 test drawings of conftest's ``garment_root``."""
    return _first_images(garment_root)


def test_shipped_weights_on_garment_drawings(garments):
    """Drawn garments are far from the training images, yet the classifier
    names most of them, and a colour cast or another size changes few of
    its answers."""
    state = torch.load(DEFAULT_CHECKPOINT, weights_only=True)
    assert all(torch.is_tensor(v) for v in state.values())
    model = load_fmnist_classifier()
    images, labels = garments
    with torch.no_grad():
        preds = model(images).argmax(1)
        assert (preds == labels).float().mean() >= 0.6
        uint8 = to_uint8(images).permute(0, 2, 3, 1)
        tinted = (uint8.float() * torch.tensor([1.0, 0.9, 0.8])).byte()
        small = torch.nn.functional.interpolate(
            images, size=28, mode='bilinear', antialias=True)
        assert (model(uint8_to_inputs(tinted)).argmax(1) == preds) \
            .float().mean() >= 0.85
        assert (model(small).argmax(1) == preds).float().mean() >= 0.8


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")
def test_fmnist_metrics_match_the_classifier_run_directly(garments,
                                                          garment_root):
    images, labels = garments
    uint8 = to_uint8(images).permute(0, 2, 3, 1).numpy()
    preds = predict(load_fmnist_classifier(),
                    uint8_to_inputs(uint8[:20]))[0].argmax(1)
    hits = (preds == labels[:20]).float()
    out = fmnist_metrics(uint8[:20], labels[:20].numpy(),
                         reference=uint8[20:])
    assert 0 < out['fmnist_class_accuracy'] < 1
    assert out['fmnist_class_accuracy'] == pytest.approx(float(hits.mean()))
    assert out['fmnist_class_accuracy_per_class'] == pytest.approx(
        {c: float(hits[labels[:20] == c].mean())
         for c in set(labels[:20].tolist())})
    same = fmnist_metrics(uint8, labels.numpy(), reference=uint8)
    assert abs(same['fid_fmnist_classifier']) < 1e-3
    # the default reference is the test split of the folder named
    default = fmnist_metrics(uint8[:20], labels[:20].numpy(),
                             fmnist_root=str(garment_root))
    whole = fmnist_metrics(uint8[:20], labels[:20].numpy(), reference=uint8)
    assert default['fid_fmnist_classifier'] == pytest.approx(
        whole['fid_fmnist_classifier'], rel=1e-4)
    noise = np.random.default_rng(0).integers(0, 256, uint8[:20].shape,
                                              dtype=np.uint8)
    fake = fmnist_metrics(noise, labels[:20].numpy(), reference=uint8[20:])
    assert fake['fid_fmnist_classifier'] > 10 * out['fid_fmnist_classifier']
    assert fake['fmnist_class_accuracy'] < 0.5


def test_shipped_weights_classify_real_images(test_images):
    state = torch.load(DEFAULT_CHECKPOINT, weights_only=True)
    assert all(torch.is_tensor(v) for v in state.values())
    model = load_fmnist_classifier()
    images, labels = test_images
    with torch.no_grad():
        preds = model(images).argmax(1)
    assert torch.equal(preds[:20], labels[:20])      # checked once by hand
    assert (preds == labels).float().mean() >= 0.9
    # uint8 samples ([N, H, W, 3], a colour cast, another size) work too
    uint8 = to_uint8(images).permute(0, 2, 3, 1)
    tinted = (uint8.float() * torch.tensor([1.0, 0.9, 0.8])).byte()
    small = torch.nn.functional.interpolate(images, size=28, mode='bilinear',
                                            antialias=True)
    with torch.no_grad():
        assert (model(uint8_to_inputs(tinted)).argmax(1) == labels) \
            .float().mean() >= 0.85
        assert (model(small).argmax(1) == labels).float().mean() >= 0.85
    assert model.features(images).shape == (40, 128)


def test_fmnist_metrics_on_real_images(test_images):
    images, labels = test_images
    uint8 = to_uint8(images).permute(0, 2, 3, 1).numpy()
    real = fmnist_metrics(uint8[:20], labels[:20].numpy(),
                          reference=uint8[20:])
    assert real['fmnist_class_accuracy'] == 1.0
    assert set(real['fmnist_class_accuracy_per_class']) == \
        set(labels[:20].tolist())
    same = fmnist_metrics(uint8, labels.numpy(), reference=uint8)
    assert abs(same['fid_fmnist_classifier']) < 1e-3
    noise = np.random.default_rng(0).integers(0, 256, uint8[:20].shape,
                                              dtype=np.uint8)
    fake = fmnist_metrics(noise, labels[:20].numpy(), reference=uint8[20:])
    # 20 vs 20 samples in 128-d: both biased upwards, noise far more
    assert fake['fid_fmnist_classifier'] > 3 * real['fid_fmnist_classifier']
    assert fake['fmnist_class_accuracy'] < 0.5


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = FashionMNISTClassifier(width=4, feature_dim=8).eval()
    path = save_classifier(model, tmp_path / 'clf.pt', dict(note='x'))
    assert (tmp_path / 'clf.json').is_file()
    loaded = load_fmnist_classifier(path)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(loaded(x), model(x))
    with pytest.raises(FileNotFoundError, match='train_fmnist_classifier'):
        load_fmnist_classifier(tmp_path / 'missing.pt')
