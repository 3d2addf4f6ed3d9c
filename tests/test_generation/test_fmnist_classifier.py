"""The shipped Fashion-MNIST classifier and its metrics on real images."""
import numpy as np
import pytest
import torch

from fqzoo.datasets import FashionMNIST
from fqzoo.generation.classifier_metrics import fmnist_metrics
from fqzoo.generation.fmnist_classifier import (
    DEFAULT_CHECKPOINT,
    FashionMNISTClassifier,
    load_fmnist_classifier,
    save_classifier,
    uint8_to_inputs,
)
from fqzoo.utils.images import to_uint8


@pytest.fixture(scope='module')
def test_images():
    """The first 40 Fashion-MNIST test images (as the fqzoo dataset gives
    them: [3, 32, 32] in [-1, 1]) and their labels."""
    dataset = FashionMNIST(split='test')
    images = torch.stack([dataset[i]['inputs'] for i in range(40)])
    return images, torch.from_numpy(dataset.labels[:40].astype(np.int64))


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
