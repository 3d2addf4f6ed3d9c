"""More error paths no other test reached (``tools/dev/raise_coverage.py``,
docs/testing.md): each wrong input's message names the culprit, and the valid
input beside it works, checked by value."""
import gzip

import numpy as np
import pytest
import torch

from fqzoo.datasets.fashion_mnist import (
    IDX_IMAGES_MAGIC,
    IDX_LABELS_MAGIC,
    load_fashion_mnist,
    read_idx,
)
from fqzoo.datasets.photo_patches import load_photo
from fqzoo.datasets.transforms.processing import ResizeShortEdge
from fqzoo.engine.hooks.non_finite import NonFiniteGuardHook
from fqzoo.models.encoders.branch_heads import TransformerBranchHead
from fqzoo.models.quantizers import LookupFreeQuantizer


def write_idx(path, magic, array):
    header = magic.to_bytes(4, 'big') + b''.join(
        int(d).to_bytes(4, 'big') for d in array.shape)
    with gzip.open(path, 'wb') as file:
        file.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_unreadable_file_and_count_mismatch(tmp_path):
    with pytest.raises(ValueError, match='Cannot read IDX file .*plain.gz'):
        (tmp_path / 'plain.gz').write_bytes(b'not gzip at all')
        read_idx(str(tmp_path / 'plain.gz'), IDX_LABELS_MAGIC)
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    write_idx(tmp_path / 't10k-images-idx3-ubyte.gz', IDX_IMAGES_MAGIC, images)
    write_idx(tmp_path / 't10k-labels-idx1-ubyte.gz', IDX_LABELS_MAGIC,
              np.array([3, 1, 4]))
    with pytest.raises(ValueError, match="2 images but 3 labels in the "
                       "'test' split"):
        load_fashion_mnist(str(tmp_path), 'test')
    write_idx(tmp_path / 't10k-labels-idx1-ubyte.gz', IDX_LABELS_MAGIC,
              np.array([3, 1]))
    got_images, got_labels = load_fashion_mnist(str(tmp_path), 'test')
    assert np.array_equal(got_images, images) and got_labels.tolist() == [3, 1]


def test_unknown_photo_lists_the_known_ones():
    with pytest.raises(ValueError, match="Unknown photo 'lena'.*coffee"):
        load_photo('lena')
    assert load_photo('coffee').shape == (400, 600, 3)


def test_resize_short_edge_size():
    with pytest.raises(ValueError, match='size must be >= 1, got 0'):
        ResizeShortEdge(size=0)
    out = ResizeShortEdge(size=4)(dict(img=np.zeros((8, 16, 3), np.uint8)))
    assert out['img'].shape[:2] == (4, 8)


def test_lfq_entropy_groups_must_divide_embed_dim():
    with pytest.raises(ValueError, match='embed_dim 10 .*entropy_groups 3'):
        LookupFreeQuantizer(embed_dim=10, entropy_groups=3)
    assert LookupFreeQuantizer(embed_dim=10, entropy_groups=2).embed_dim == 10


def test_transformer_head_pos_interpolation_named():
    with pytest.raises(ValueError, match='"nearest"'):
        TransformerBranchHead(in_channels=8, width=16, num_layers=1,
                              num_heads=2, grid_size=2,
                              pos_interpolation='nearest')
    head = TransformerBranchHead(in_channels=8, width=16, num_layers=1,
                                 num_heads=2, grid_size=2,
                                 pos_interpolation='bilinear')
    assert head(torch.randn(1, 8, 2, 2)).shape[-2:] == (2, 2)


@pytest.mark.parametrize('kwargs,match', [
    (dict(policy='ignore'), 'policy must be one of .*"ignore"'),
    (dict(max_consecutive=0), 'max_consecutive must be >= 1, got 0')])
def test_non_finite_guard_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NonFiniteGuardHook(**kwargs)
    hook = NonFiniteGuardHook(policy='stop', max_consecutive=3)
    assert (hook.policy, hook.max_consecutive) == ('stop', 3)
