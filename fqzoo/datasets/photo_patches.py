"""Random crops of the colour photos bundled with scikit-image, scikit-learn
and matplotlib: real, permissively licensed images that need no download.

Eleven photos: scikit-image's astronaut, chelsea, coffee, rocket,
hubble_deep_field, immunohistochemistry, retina and stereo_motorcycle (left
view), scikit-learn's china and flower, and matplotlib's grace_hopper.
"""
import math
from functools import cache
from typing import Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from fqzoo.registry import DATASETS

SKIMAGE_PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket',
                  'hubble_deep_field', 'immunohistochemistry', 'retina',
                  'stereo_motorcycle')
SKLEARN_PHOTOS = ('china', 'flower')
MATPLOTLIB_PHOTOS = ('grace_hopper',)
# A sample's label is its photo's position in this tuple, in both splits.
PHOTO_NAMES = SKIMAGE_PHOTOS + SKLEARN_PHOTOS + MATPLOTLIB_PHOTOS


def to_rgb(image: Image.Image) -> np.ndarray:
    """``HxWx3`` uint8 RGB from a gray, gray+alpha, RGB or RGBA image
    (alpha is dropped)."""
    return np.asarray(image.convert('RGB'))


def load_photo(name: str) -> np.ndarray:
    """One bundled photo as ``HxWx3`` uint8 RGB.

    Args:
        name (str): one of :data:`PHOTO_NAMES`.

    Returns:
        np.ndarray: the photo at its original resolution.
    """
    if name in SKIMAGE_PHOTOS:
        from skimage import data
        array = getattr(data, name)()
        if name == 'stereo_motorcycle':  # (left, right, disparity)
            array = array[0]
        return to_rgb(Image.fromarray(array))
    if name in SKLEARN_PHOTOS:
        from sklearn.datasets import load_sample_image
        return to_rgb(Image.fromarray(load_sample_image(f'{name}.jpg')))
    if name in MATPLOTLIB_PHOTOS:
        from matplotlib.cbook import get_sample_data
        with get_sample_data(f'{name}.jpg') as file:
            return to_rgb(Image.open(file))
    raise ValueError(f'Unknown photo {name!r}; known: {", ".join(PHOTO_NAMES)}')


@cache
def scaled_photo(name: str, scale: float) -> Tensor:
    """A bundled photo downscaled by ``scale`` (PIL bicubic, antialiased),
    as a ``[3, H, W]`` float tensor in [-1, 1]. Cached per process."""
    image = Image.fromarray(load_photo(name))
    size = (max(1, round(image.width * scale)),
            max(1, round(image.height * scale)))
    array = np.asarray(image.resize(size, Image.Resampling.BICUBIC))
    return torch.from_numpy(array.transpose(2, 0, 1).copy()).float() / 127.5 - 1


def hue_rotation(angle: float) -> Tensor:
    """``3x3`` matrix rotating RGB colours by ``angle`` radians about the
    grey axis ``(1, 1, 1)`` (Rodrigues' formula): greys stay grey, the
    brightness ``r + g + b`` is kept, hues turn."""
    k = torch.full((3, ), 3 ** -0.5, dtype=torch.float64)
    cross = 3 ** -0.5 * torch.tensor([[0., -1, 1], [1, 0, -1], [-1, 1, 0]],
                                     dtype=torch.float64)   # [k]_x
    rot = (math.cos(angle) * torch.eye(3, dtype=torch.float64)
           + math.sin(angle) * cross
           + (1 - math.cos(angle)) * torch.outer(k, k))
    return rot.float()


def jitter_colours(crop: Tensor, rng: np.random.Generator,
                   max_hue: float = 180.0,
                   saturation: Sequence[float] = (0.6, 1.4),
                   permute: bool = True) -> Tensor:
    """Natural-looking colour augmentation of a ``[3, H, W]`` crop in
    [-1, 1]: a random channel order (unless ``permute`` is False), a hue
    rotation about the grey axis of up to ``max_hue`` degrees and a
    saturation factor drawn from ``saturation`` (greys and brightness kept),
    clamped to [-1, 1]. Draws from ``rng`` only, the same number of draws
    whatever the arguments."""
    order = rng.permutation(3)
    if permute:
        crop = crop[torch.from_numpy(order)]
    angle = math.radians(max_hue) * rng.uniform(-1, 1)
    factor = float(rng.uniform(*saturation))
    rgb = torch.einsum('ij,jhw->ihw', hue_rotation(angle), (crop + 1) / 2)
    grey = rgb.mean(0, keepdim=True)
    rgb = grey + factor * (rgb - grey)
    return (rgb * 2 - 1).clamp(-1, 1)


@DATASETS.register_module()
class BundledPhotoPatches(Dataset):
    """Square crops of the photos in :data:`PHOTO_NAMES`, for CPU-scale
    training and tests with real images and no download.

    Each photo is first downscaled by ``scale`` (default 0.25: a 512 px
    photo becomes 128 px, so a 32 px crop shows an object part rather than
    flat texture). Sample ``index`` picks a photo uniformly and a crop
    position (and, in the train split with ``flip``, a horizontal flip) with
    ``np.random.default_rng([seed, index])``: the same (seed, index) always
    gives the same crop, independent of any global random state, so runs are
    reproducible and resumable. The ``val_photos`` are used only by the val
    split, the other photos only by the train split.

    Args:
        split (str): 'train' or 'val'. Defaults to 'train'.
        crop_size (int): side of the square crops. Defaults to 32.
        scale (float): downscale factor applied to every photo before
            cropping. Defaults to 0.25.
        num_samples (int, optional): dataset length. Defaults to 2000 for
            train and 64 for val.
        val_photos (Sequence[str]): photos held out for the val split.
            Defaults to ('coffee', 'grace_hopper').
        seed (int): seed of the crops. Defaults to 0.
        flip (bool): random horizontal flips in the train split.
            Defaults to True.
        scales (Sequence[float], optional): train split only: each sample
            draws its downscale factor from these (multi-scale crops: with
            small factors a crop shows most of a photo, with large ones a
            detail). Defaults to None (``scale`` only).
        colour (bool | dict): train split only: :func:`jitter_colours`
            (channel order, hue rotation, saturation); a dict gives its
            ``max_hue``, ``saturation`` and ``permute``, e.g.
            ``dict(max_hue=0, saturation=(1, 1))`` for channel order only,
            ``dict(permute=False)`` for hue and saturation only. Defaults to
            False.

    Example:
        >>> from fqzoo.registry import DATASETS
        >>> val = DATASETS.build(dict(type='BundledPhotoPatches', split='val'))
        >>> sample = val[0]
        >>> sample['inputs'].shape, sample['data_samples']['label']
        (torch.Size([3, 32, 32]), 10)
    """

    def __init__(self, split: str = 'train', crop_size: int = 32,
                 scale: float = 0.25, num_samples: Optional[int] = None,
                 val_photos: Sequence[str] = ('coffee', 'grace_hopper'),
                 seed: int = 0, flip: bool = True,
                 scales: Optional[Sequence[float]] = None,
                 colour: Union[bool, dict] = False) -> None:
        if split not in ('train', 'val'):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        unknown = set(val_photos) - set(PHOTO_NAMES)
        if unknown:
            raise ValueError(f'Unknown val_photos {sorted(unknown)}; known: '
                             f'{", ".join(PHOTO_NAMES)}')
        train_photos = [n for n in PHOTO_NAMES if n not in val_photos]
        if not val_photos or not train_photos:
            raise ValueError('val_photos must hold out at least one photo and '
                             'leave at least one for training')
        assert not set(train_photos) & set(val_photos)
        self.split = split
        self.photo_names = train_photos if split == 'train' else [
            n for n in PHOTO_NAMES if n in val_photos]
        self.crop_size = crop_size
        self.scale = scale
        self.num_samples = num_samples if num_samples is not None else (
            2000 if split == 'train' else 64)
        self.seed = seed
        self.flip = flip and split == 'train'
        self.colour = (dict(colour) if isinstance(colour, dict)
                       else {} if colour else None)
        if split != 'train':
            self.colour = None
        self.scales = (tuple(scales) if scales and split == 'train'
                       else (scale, ))
        # photos[s][p]: photo p downscaled by scales[s]
        self.photos = [[scaled_photo(n, f) for n in self.photo_names]
                       for f in self.scales]
        for f, photos in zip(self.scales, self.photos):
            for name, photo in zip(self.photo_names, photos):
                if min(photo.shape[1:]) < crop_size:
                    raise ValueError(
                        f'Photo {name!r} downscaled by {f} is '
                        f'{tuple(photo.shape[1:])}, smaller than crop_size '
                        f'{crop_size}; raise the scale or lower crop_size')

    @property
    def metainfo(self) -> dict:
        """``classes``: the photo names, indexed by label."""
        return dict(classes=PHOTO_NAMES)

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        if not 0 <= index < self.num_samples:
            raise IndexError(f'index {index} out of range for '
                             f'{self.num_samples} samples')
        rng = np.random.default_rng([self.seed, index])
        which = int(rng.integers(len(self.photo_names)))
        photos = self.photos[int(rng.integers(len(self.scales)))
                             if len(self.scales) > 1 else 0]
        photo = photos[which]
        top = int(rng.integers(photo.shape[1] - self.crop_size + 1))
        left = int(rng.integers(photo.shape[2] - self.crop_size + 1))
        crop = photo[:, top:top + self.crop_size, left:left + self.crop_size]
        if self.flip and rng.random() < 0.5:
            crop = crop.flip(-1)
        if self.colour is not None:
            crop = jitter_colours(crop, rng, **self.colour)
        label = PHOTO_NAMES.index(self.photo_names[which])
        return dict(inputs=crop.clone(),
                    data_samples=dict(label=label, index=index))
