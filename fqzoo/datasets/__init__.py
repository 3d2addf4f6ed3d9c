"""Datasets and transforms; importing this package registers them all."""
from .code_dataset import CodeDataset
from .fashion_mnist import FashionMNIST
from .image_folder import BadImageError, ImageFolderDataset
from .photo_patches import BundledPhotoPatches
from .transforms import PackTokenizerInputs, RandomCrop, ResizeShortEdge

__all__ = [
    'BadImageError', 'BundledPhotoPatches', 'CodeDataset', 'FashionMNIST',
    'ImageFolderDataset', 'PackTokenizerInputs', 'RandomCrop',
    'ResizeShortEdge',
]
