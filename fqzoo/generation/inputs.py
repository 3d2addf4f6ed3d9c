"""Images to evaluate and to compare with, as uint8 ``[N, H, W, 3]``.

- samples: an ``.npz`` in the ADM evaluator's layout (``arr_0``: uint8
  ``[N, H, W, 3]``; ``tools/sample.py`` adds the labels as ``arr_1``);
- references: an ADM reference batch (``VIRTUAL_imagenet256_labeled.npz``:
  its ``arr_0``; the precomputed ``mu``/``sigma`` in it come from ADM's
  TensorFlow graph and are not used), a folder of image files, or
  ``fashion-mnist:<split>`` (the fqzoo Fashion-MNIST dataset at the
  samples' size).
"""
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from fqzoo.datasets.image_folder import IMG_EXTENSIONS
from fqzoo.errors import (
    InputError,
    InputFileNotFoundError,
    InputKeyError,
)
from fqzoo.evaluation.fmnist_classifier import load_split
from fqzoo.utils.images import to_uint8

from .shards import npz_arrays

FMNIST_PREFIX = 'fashion-mnist:'


class UInt8Images(Dataset):
    """uint8 ``[N, H, W, 3]`` images as uint8 ``[3, H, W]`` tensors, the
    input torch-fidelity's feature extractors take."""

    def __init__(self, images: np.ndarray) -> None:
        check_images(images, 'images')
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(
            self.images[index])).permute(2, 0, 1)


def check_images(images: np.ndarray, name: str) -> np.ndarray:
    """``images`` if uint8 ``[N, H, W, 3]`` with ``N >= 1``, else a
    InputError naming ``name``."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 \
            or len(images) == 0:
        raise InputError(f'{name} must be uint8 [N, H, W, 3] with N >= 1, '
                         f'got {images.dtype} {list(images.shape)}')
    return images


def load_samples(path: Union[str, Path]
                 ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """``(images, labels)`` of a samples ``.npz``: ``arr_0`` and, when
    present, ``arr_1`` (None otherwise).

    Raises:
        InputError: the file is truncated or not an ``.npz`` (named, with
            how to redo it), or its arrays are not samples.
    """
    try:
        npz_arrays(path)
    except ValueError as err:
        raise InputError(f'{err}. If tools/sample.py wrote it, run the same '
                         'command again: it rewrites a samples.npz that is '
                         'not whole from its shards') from None
    with np.load(path) as data:
        if 'arr_0' not in data.files:
            raise InputKeyError(f'{path} has no arr_0 (uint8 [N, H, W, 3] '
                                'images): not a samples .npz')
        images = check_images(data['arr_0'], f'{path}: arr_0')
        labels = data['arr_1'].astype(np.int64) if 'arr_1' in data.files \
            else None
    if labels is not None and labels.shape != (len(images),):
        raise InputError(f'{path}: arr_1 has shape {list(labels.shape)}, '
                         f'expected one label per image ({len(images)})')
    return images, labels


def _image_files(folder: Path) -> list:
    return sorted(p for p in folder.rglob('*')
                  if p.suffix.lower() in IMG_EXTENSIONS and p.is_file()
                  and not any(part.startswith('.')
                              for part in p.relative_to(folder).parts))


def _center_resize(image: Image.Image, size: int) -> Image.Image:
    """ADM's reference preprocessing (``center_crop_arr``): halve with a box
    filter while the shorter side is at least ``2 * size``, shorter side to
    ``size`` (bicubic), centre crop."""
    while min(image.size) >= 2 * size:
        image = image.resize(tuple(x // 2 for x in image.size), Image.BOX)
    scale = size / min(image.size)
    image = image.resize((round(image.width * scale),
                          round(image.height * scale)), Image.BICUBIC)
    left = (image.width - size) // 2
    top = (image.height - size) // 2
    return image.crop((left, top, left + size, top + size))


def load_image_folder(folder: Union[str, Path],
                      size: Optional[int] = None) -> np.ndarray:
    """Every image under ``folder`` (recursively, sorted, hidden entries
    skipped) as RGB uint8 ``[N, H, W, 3]``.

    Args:
        folder (str | Path): the folder.
        size (int, optional): resize the shorter side to ``size`` and
            centre-crop to ``size x size``. Defaults to None: the images
            must then all have one size.
    """
    folder = Path(folder)
    files = _image_files(folder)
    if not files:
        raise InputFileNotFoundError(
            f'No images ({", ".join(IMG_EXTENSIONS)}) under {folder}')
    images = []
    for path in files:
        with Image.open(path) as image:
            image = image.convert('RGB')
            if size is not None:
                image = _center_resize(image, size)
            array = np.asarray(image, dtype=np.uint8)
        if images and array.shape != images[0].shape:
            raise InputError(
                f'{path} is {array.shape[1]}x{array.shape[0]}, '
                f'{files[0]} is {images[0].shape[1]}x{images[0].shape[0]}: '
                'pass a reference size to resize and crop them all')
        images.append(array)
    return np.stack(images)


def load_fashion_mnist_images(split: str, size: int,
                              data_root: Optional[str] = None
                              ) -> Tuple[np.ndarray, np.ndarray]:
    """A Fashion-MNIST split as the fqzoo dataset gives it at ``size``
    (gray replicated to RGB), quantized like samples: ``(uint8 [N, size,
    size, 3], labels [N])``."""
    images, labels = load_split(data_root, split, size)
    return to_uint8(images).permute(0, 2, 3, 1).numpy(), labels.numpy()


def load_reference(ref: Union[str, Path], *, size: Optional[int] = None,
                   fmnist_root: Optional[str] = None) -> np.ndarray:
    """Reference images, uint8 ``[N, H, W, 3]``.

    Args:
        ref (str | Path): an ``.npz`` (its ``arr_0``, as in ADM reference
            batches), a folder of images, or ``fashion-mnist:train`` /
            ``fashion-mnist:test``.
        size (int, optional): folder images are resized (shorter side)
            and centre-cropped to it; the Fashion-MNIST size (required
            there). Defaults to None.
        fmnist_root (str, optional): the Fashion-MNIST IDX folder.
            Defaults to None: ``$FQZOO_FASHION_MNIST``, else the Debian
            package's folder.

    Returns:
        np.ndarray: the images.
    """
    ref = str(ref)
    if ref.startswith(FMNIST_PREFIX):
        if size is None:
            raise InputError('fashion-mnist references need the image size')
        return load_fashion_mnist_images(ref[len(FMNIST_PREFIX):], size,
                                         fmnist_root)[0]
    path = Path(ref)
    if path.is_dir():
        return load_image_folder(path, size)
    if path.suffix == '.npz':
        npz_arrays(path)
        with np.load(path) as data:
            if 'arr_0' not in data.files:
                raise InputKeyError(f'{path} has no arr_0 (reference '
                                    'images)')
            return check_images(data['arr_0'], f'{path}: arr_0')
    raise InputFileNotFoundError(f'Reference {ref!r} is neither an .npz, a '
                                 f'folder nor {FMNIST_PREFIX}<train|test>')
