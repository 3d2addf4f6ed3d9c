"""Fashion-MNIST (Xiao et al. 2017) read from its IDX files.

The four standard files (``{train,t10k}-{images-idx3,labels-idx1}-ubyte``,
gzipped or not) may lie in any folder: ``data_root=`` names it, and where
it is not given, the environment variable ``FQZOO_FASHION_MNIST`` does, and
otherwise the Debian package's folder (``apt-get install
dataset-fashion-mnist`` puts them in /usr/share/datasets/fashion-mnist).
docs/datasets.md says where to get them without root.
"""
import gzip
import os
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from fqzoo.registry import DATASETS
from fqzoo.utils.preflight import Requirement

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
SPLIT_PREFIXES = {'train': 'train', 'test': 't10k'}
ROOT_ENV = 'FQZOO_FASHION_MNIST'
DEBIAN_ROOT = '/usr/share/datasets/fashion-mnist'
SOURCE = ('apt-get install dataset-fashion-mnist, or the four .gz files of '
          'https://github.com/zalandoresearch/fashion-mnist (data/fashion) '
          f'in any folder named by ${ROOT_ENV} or data_root=')
CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal',
           'Shirt', 'Sneaker', 'Bag', 'Ankle boot')


def read_idx(path: str, magic: int) -> np.ndarray:
    """The uint8 array in an IDX file, gzipped (``.gz``) or plain.

    Args:
        path (str): the file.
        magic (int): the expected magic number, e.g. :data:`IDX_IMAGES_MAGIC`.

    Returns:
        np.ndarray: array of the dimensions the header gives.

    Raises:
        ValueError: wrong magic number or a size that does not match the
            header; the message names the file.
    """
    opener = gzip.open if path.endswith('.gz') else open
    try:
        with opener(path, 'rb') as file:
            raw = file.read()
    except (OSError, EOFError) as err:
        raise ValueError(f'Cannot read IDX file {path!r}: {err}') from err
    found = int.from_bytes(raw[:4], 'big') if len(raw) >= 4 else None
    if found != magic:
        raise ValueError(f'{path!r} is not an IDX file of the expected kind: '
                         f'magic number {found}, expected {magic}')
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f'{path!r}: {len(raw)} bytes end inside the '
                         f'{header}-byte IDX header')
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype='>u4'))
    if len(raw) - header != int(np.prod(shape)):
        raise ValueError(f'{path!r}: {len(raw) - header} data bytes do not '
                         f'match the header shape {shape}')
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def default_root() -> str:
    """The Fashion-MNIST folder used when none is given: ``$FQZOO_FASHION_MNIST``
    if set, else the Debian package's /usr/share/datasets/fashion-mnist."""
    return os.environ.get(ROOT_ENV) or DEBIAN_ROOT


def find_idx_file(data_root: str, name: str) -> str:
    """``data_root/name.gz`` or ``data_root/name``, whichever exists."""
    for candidate in (f'{name}.gz', name):
        path = os.path.join(data_root, candidate)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f'Neither {name}.gz nor {name} in {data_root!r}')


def load_fashion_mnist(data_root: str,
                       split: str) -> Tuple[np.ndarray, np.ndarray]:
    """``(images [N, 28, 28] uint8, labels [N] uint8)`` of one split."""
    prefix = SPLIT_PREFIXES[split]
    images = read_idx(find_idx_file(data_root, f'{prefix}-images-idx3-ubyte'),
                      IDX_IMAGES_MAGIC)
    labels = read_idx(find_idx_file(data_root, f'{prefix}-labels-idx1-ubyte'),
                      IDX_LABELS_MAGIC)
    if len(images) != len(labels):
        raise ValueError(f'{len(images)} images but {len(labels)} labels in '
                         f'the {split!r} split of {data_root!r}')
    return images, labels


@DATASETS.register_module()
class FashionMNIST(Dataset):
    """Fashion-MNIST: 28x28 gray clothing images in 10 classes, resized to
    ``image_size`` (bilinear) and replicated to three channels.

    Args:
        data_root (str): folder with the IDX files
            (``{train,t10k}-{images-idx3,labels-idx1}-ubyte``, optionally
            ``.gz``). Defaults to None: :func:`default_root`
            (``$FQZOO_FASHION_MNIST``, else the Debian package's folder).
        split (str): 'train' (60000 images) or 'test' (10000).
            Defaults to 'train'.
        image_size (int): side of the returned images. Defaults to 32.

    Example:
        >>> from fqzoo.registry import DATASETS
        >>> test = DATASETS.build(dict(type='FashionMNIST', split='test'))
        >>> test[0]['inputs'].shape, test.metainfo['classes'][9]
        (torch.Size([3, 32, 32]), 'Ankle boot')
    """

    def __init__(self, data_root: Optional[str] = None,
                 split: str = 'train', image_size: int = 32) -> None:
        if split not in SPLIT_PREFIXES:
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        data_root = data_root or default_root()
        if not os.path.isdir(data_root):
            raise FileNotFoundError(
                f'Fashion-MNIST folder {data_root!r} does not exist: '
                f'{SOURCE}')
        self.data_root = data_root
        self.split = split
        self.image_size = image_size
        self.images, self.labels = load_fashion_mnist(data_root, split)

    @classmethod
    def external_requirements(cls, args: dict) -> List[Requirement]:
        """The folder of IDX files."""
        return [Requirement(
            what='Fashion-MNIST IDX files (FashionMNIST)', arg='data_root',
            path=args.get('data_root') or default_root(), source=SOURCE)]

    @property
    def metainfo(self) -> dict:
        """``classes``: the class names, indexed by label."""
        return dict(classes=CLASSES)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        image = torch.from_numpy(self.images[index].astype(np.float32))
        image = image / 127.5 - 1
        if tuple(image.shape) != (self.image_size, self.image_size):
            image = F.interpolate(image[None, None], size=self.image_size,
                                  mode='bilinear', align_corners=False,
                                  antialias=True)[0, 0]
        return dict(inputs=image.clamp(-1, 1).expand(3, -1, -1).contiguous(),
                    data_samples=dict(label=int(self.labels[index]),
                                      index=int(index)))
