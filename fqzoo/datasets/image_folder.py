"""Images in a folder: ImageNet layout (one sub-folder per class) or flat."""
import os
import warnings
from typing import Callable, List, Optional, Sequence, Union

from mmengine.dataset import BaseDataset

from fqzoo.registry import DATASETS, TRANSFORMS
from fqzoo.utils.preflight import Requirement

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif',
                  '.tiff', '.webp')
DEFAULT_PIPELINE = (dict(type='LoadImageFromFile', imdecode_backend='pillow'),
                    dict(type='PackTokenizerInputs'))


class BadImageError(OSError):
    """An image that could not be read or transformed; the message names
    the file."""


@DATASETS.register_module()
class ImageFolderDataset(BaseDataset):
    """Every image under a folder, found by extension (case-insensitive).

    Two layouts: when the folder has sub-folders, each sub-folder is a class
    (``root/n01440764/x.JPEG``, searched recursively), labelled by its
    position among the sorted sub-folder names (``metainfo['classes']``),
    and files lying directly in the folder are ignored; otherwise every
    image in the folder is a sample with label -1. Hidden entries (names
    starting with '.') are ignored. The folder is ``data_root`` joined with
    ``data_prefix['img_path']``.

    Each sample is ``pipeline(dict(img_path=..., gt_label=..., sample_idx=...))``;
    the pipeline must end in ``PackTokenizerInputs``. An image that fails to
    load or transform raises :class:`BadImageError` naming the file, or,
    with ``skip_bad_files=True``, is replaced by the next index's sample
    with a warning naming the file (deterministic, so runs stay
    reproducible).

    Args:
        data_root (str): dataset folder.
        data_prefix (dict): ``img_path``: sub-folder of ``data_root`` that
            holds the images (e.g. 'train'). Defaults to dict(img_path='').
        pipeline (Sequence[dict | Callable]): transforms, built from fqzoo's
            TRANSFORMS (mmcv's transforms resolve too). Defaults to
            LoadImageFromFile (pillow decoding) + PackTokenizerInputs, which
            only collates when all images have one size.
        extensions (Sequence[str]): image file extensions.
            Defaults to :data:`IMG_EXTENSIONS`.
        skip_bad_files (bool): skip unreadable images with a warning instead
            of raising. Defaults to False.
        indices (int | Sequence[int], optional): keep only these samples
            (an int keeps the first ones). Defaults to None (all).
        lazy_init (bool): defer scanning the folder to first use.
            Defaults to False.
        max_refetch (int): with ``skip_bad_files``, how many following
            samples to try before giving up. Defaults to 1000.

    Example:
        >>> from fqzoo.registry import DATASETS
        >>> train = DATASETS.build(dict(
        ...     type='ImageFolderDataset', data_root='data/imagenet',
        ...     data_prefix=dict(img_path='train'),
        ...     pipeline=[dict(type='LoadImageFromFile'),
        ...               dict(type='ResizeShortEdge', size=256),
        ...               dict(type='CenterCrop', crop_size=256),
        ...               dict(type='PackTokenizerInputs')]))
    """

    def __init__(self, data_root: str, *,
                 data_prefix: Optional[dict] = None,
                 pipeline: Sequence[Union[dict, Callable]] = DEFAULT_PIPELINE,
                 extensions: Sequence[str] = IMG_EXTENSIONS,
                 skip_bad_files: bool = False,
                 indices: Optional[Union[int, Sequence[int]]] = None,
                 lazy_init: bool = False, max_refetch: int = 1000) -> None:
        self.extensions = tuple(ext.lower() for ext in extensions)
        self.skip_bad_files = skip_bad_files
        transforms = [TRANSFORMS.build(t) if isinstance(t, dict) else t
                      for t in pipeline]
        super().__init__(data_root=data_root,
                         data_prefix=data_prefix or dict(img_path=''),
                         indices=indices, pipeline=transforms,
                         lazy_init=lazy_init, max_refetch=max_refetch)

    @classmethod
    def external_requirements(cls, args: dict) -> List[Requirement]:
        """The image folder, ``data_root`` joined with
        ``data_prefix['img_path']``."""
        prefix = (args['data_prefix'] or {}).get('img_path', '')
        return [Requirement(
            what='image folder (ImageFolderDataset)', arg='data_root',
            path=os.path.join(args['data_root'], prefix),
            source='your images in class-folder or flat layout, '
            'docs/datasets.md (ImageNet-1k: https://image-net.org/'
            'download.php, ILSVRC2012 train and val)')]

    @property
    def folder(self) -> str:
        """The folder the images are read from."""
        return self.data_prefix['img_path']

    def _is_image(self, name: str) -> bool:
        return not name.startswith('.') and name.lower().endswith(
            self.extensions)

    def _images_under(self, folder: str) -> List[str]:
        paths = []
        for root, dirs, files in os.walk(folder, followlinks=True):
            dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
            paths += [os.path.join(root, f) for f in sorted(files)
                      if self._is_image(f)]
        return paths

    def load_data_list(self) -> List[dict]:
        """Scan the folder; sets ``metainfo['classes']``."""
        folder = self.folder
        if not os.path.isdir(folder):
            raise FileNotFoundError(f'Image folder {folder!r} does not exist')
        with os.scandir(folder) as entries:
            entries = sorted(entries, key=lambda e: e.name)
        classes = [e.name for e in entries
                   if e.is_dir() and not e.name.startswith('.')]
        if classes:
            data_list = [dict(img_path=path, gt_label=label)
                         for label, name in enumerate(classes)
                         for path in self._images_under(
                             os.path.join(folder, name))]
        else:
            data_list = [dict(img_path=e.path, gt_label=-1) for e in entries
                         if e.is_file() and self._is_image(e.name)]
        if not data_list:
            raise FileNotFoundError(
                f'No images with extensions {", ".join(self.extensions)} '
                f'in {folder!r}')
        self._metainfo['classes'] = tuple(classes)
        return data_list

    def prepare_data(self, idx: int) -> dict:
        """The ``idx``-th sample through the pipeline.

        Raises:
            BadImageError: the image could not be loaded or transformed.
        """
        data_info = self.get_data_info(idx)
        path = data_info['img_path']
        try:
            sample = self.pipeline(data_info)
        except Exception as err:
            raise BadImageError(f'Cannot load or transform image {path!r}: '
                                f'{type(err).__name__}: {err}') from err
        if sample is None:
            raise BadImageError(f'The pipeline dropped image {path!r}')
        return sample

    def __getitem__(self, idx: int) -> dict:
        if not self._fully_initialized:
            self.full_init()
        if not -len(self) <= idx < len(self):
            raise IndexError(f'index {idx} out of range for {len(self)} images')
        for attempt in range(self.max_refetch + 1):
            try:
                return self.prepare_data((idx + attempt) % len(self))
            except BadImageError as err:
                if not self.skip_bad_files:
                    raise
                warnings.warn(f'{err}; skipped', stacklevel=2)
        raise BadImageError(f'{self.max_refetch + 1} images in a row from '
                            f'index {idx} failed to load in {self.folder!r}')
