"""What the demo page computes, without the page: pure functions over the
shipped models (``fqzoo/zoo_assets/``, loaded by name through the model
index), testable without Gradio or a browser.

- :func:`read_upload` checks an uploaded file (an image, at least
  :data:`MIN_SIDE` pixels a side, at most :data:`MAX_SIDE` and
  :data:`MAX_BYTES`) and raises :class:`DemoInputError` with a sentence for
  the page otherwise.
- :func:`tokenize` encodes an image with a shipped tokenizer and returns the
  reconstruction, each sub-codebook's decode on its own (FQGAN Figure 4:
  branch g's quantized map kept, every other branch replaced by its mean
  over the image's positions, :func:`fqzoo.apis.reconstruction.
  branch_reconstructions` with ``ablate='mean'``), the code maps as colour
  images, the PSNR and the tokens per image.
- :func:`sample` draws class-conditional samples from a shipped generator
  (one seed per sample, ``seed + i`` for sample i, so every picture can be
  drawn again alone) and reports the settings that reproduce them.
"""
import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from fqzoo.apis.reconstruction import branch_reconstructions
from fqzoo.datasets.fashion_mnist import CLASSES
from fqzoo.datasets.photo_patches import PHOTO_NAMES, load_photo
from fqzoo.models.generators.sampling import rngs_for
from fqzoo.utils.images import to_uint8

MIN_SIDE = 8
MAX_SIDE = 4096
MAX_BYTES = 20 * 1024 * 1024

#: shown name -> (model index name, input kind, side the image is resized to)
TOKENIZERS: Dict[str, Tuple[str, str, int]] = {
    'Photos FQ-2 (2 x 512 codes)': ('fqzoo-photos-fq2', 'rgb', 256),
    'Fashion-MNIST FQ-2 (2 x 256 codes)': ('fqzoo-fmnist-fq2', 'gray', 32),
    'Fashion-MNIST VQ (512 codes)': ('fqzoo-fmnist-vq', 'gray', 32),
}
#: shown name -> (generator, its tokenizer), in the order shown
GENERATORS: Dict[str, Tuple[str, str]] = {
    'FAR on FQ-2 codes': ('fqzoo-fmnist-far', 'fqzoo-fmnist-fq2'),
    'AR on VQ codes': ('fqzoo-fmnist-ar', 'fqzoo-fmnist-vq'),
}
CLASS_NAMES = CLASSES
MAX_SAMPLES = 16


class DemoInputError(ValueError):
    """An input the page refuses, with a sentence to show there."""


@functools.cache
def shipped_model(name: str) -> torch.nn.Module:
    """A shipped model by its model-index name, loaded once (offline: the
    weights are files of the repository)."""
    from fqzoo.apis import get_model
    torch.set_grad_enabled(False)
    return get_model(name, local_files_only=True)


# ---------------------------------------------------------------- inputs
def read_upload(path: Union[str, Path, None]) -> Image.Image:
    """An uploaded file as an RGB image, checked.

    Raises:
        DemoInputError: no file, a file that is no image, an image smaller
            than :data:`MIN_SIDE` or larger than :data:`MAX_SIDE` pixels a
            side, or a file over :data:`MAX_BYTES`.
    """
    if path is None:
        raise DemoInputError('No file was uploaded: choose an image file '
                             '(PNG, JPEG, ...) or pick a bundled photo.')
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise DemoInputError(
            f'{path.name} is {size:,} bytes ({size / 2 ** 20:.1f} MB); the '
            f'demo takes files up to {MAX_BYTES:,} bytes '
            f'({MAX_BYTES / 2 ** 20:g} MB).')
    try:
        image = Image.open(path)
        width, height = image.size  # read from the header, not decoded yet
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise DemoInputError(
            f'{path.name} is not an image the demo can read (PNG, JPEG, '
            'BMP, GIF, WebP, TIFF ...).') from None
    if min(width, height) < MIN_SIDE:
        raise DemoInputError(
            f'{path.name} is {width} x {height} pixels: too small to '
            f'tokenize; give an image of at least {MIN_SIDE} x {MIN_SIDE}.')
    if max(width, height) > MAX_SIDE:
        raise DemoInputError(
            f'{path.name} is {width} x {height} pixels: too large; give an '
            f'image of at most {MAX_SIDE} pixels a side.')
    try:
        return image.convert('RGB')
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise DemoInputError(f'{path.name} could not be decoded (a damaged '
                             'or truncated image file?).') from None


def bundled_photo(name: str) -> Image.Image:
    """One of the photos that ship with scikit-image, scikit-learn and
    matplotlib (:data:`fqzoo.datasets.photo_patches.PHOTO_NAMES`)."""
    if name not in PHOTO_NAMES:
        raise DemoInputError(f'No bundled photo {name!r}; choose one of '
                             f'{", ".join(PHOTO_NAMES)}.')
    return Image.fromarray(load_photo(name)).convert('RGB')


def to_input(image: Image.Image, kind: str, side: int) -> Tensor:
    """``[1, 3, side, side]`` in [-1, 1]: the centre square of ``image``
    resized (bicubic); ``'gray'`` takes the luminance, replicated to three
    channels, as the Fashion-MNIST tokenizers were trained on."""
    width, height = image.size
    square = min(width, height)
    left, top = (width - square) // 2, (height - square) // 2
    image = image.crop((left, top, left + square, top + square))
    if kind == 'gray':
        image = image.convert('L').convert('RGB')
    image = image.resize((side, side), Image.Resampling.BICUBIC)
    array = np.asarray(image, dtype=np.float32).transpose(2, 0, 1)
    return torch.from_numpy(array.copy())[None] / 127.5 - 1


# ------------------------------------------------------------- tokenizer
def to_rgb_array(image: Tensor, scale: int = 1) -> np.ndarray:
    """``[3, H, W]`` in [-1, 1] to uint8 ``[H*s, W*s, 3]`` (nearest)."""
    array = to_uint8(image.clamp(-1, 1)).permute(1, 2, 0).numpy()
    if scale > 1:
        array = array.repeat(scale, 0).repeat(scale, 1)
    return np.ascontiguousarray(array)


@functools.lru_cache(maxsize=8)
def code_palette(codebook_size: int) -> np.ndarray:
    """A fixed colour per code (``[codebook_size, 3]`` uint8): evenly
    spaced hues, code i taking hue number ``i * step mod size`` with
    ``step`` about 0.38 of the codebook (coprime to its size), so
    neighbouring indices lie far apart on the colour wheel; even codes are
    saturated and bright, odd codes paler (distinct colours for every code
    up to 512 entries)."""
    from math import gcd

    from matplotlib.colors import hsv_to_rgb
    step = max(1, round(codebook_size * 0.381966))
    while gcd(step, codebook_size) != 1:
        step += 1
    index = np.arange(codebook_size)
    hue = (index * step % codebook_size) / codebook_size
    hsv = np.stack([hue, np.where(index % 2 == 0, 1.0, 0.6),
                    np.where(index % 2 == 0, 1.0, 0.85)], 1)
    return (hsv_to_rgb(hsv) * 255).round().astype(np.uint8)


def code_map(indices: Tensor, codebook_size: int, side: int) -> np.ndarray:
    """An index map ``[h, w]`` as a colour image about ``side`` pixels
    wide (each token a square of one colour)."""
    palette = code_palette(codebook_size)
    array = palette[indices.cpu().numpy()]
    scale = max(1, side // indices.shape[-1])
    return np.ascontiguousarray(array.repeat(scale, 0).repeat(scale, 1))


def psnr(recon: Tensor, image: Tensor) -> float:
    """PSNR in dB of 8-bit levels (images in [-1, 1])."""
    a = to_uint8(recon.clamp(-1, 1)).float()
    b = to_uint8(image.clamp(-1, 1)).float()
    mse = float((a - b).pow(2).mean())
    return float('inf') if mse == 0 else 10 * np.log10(255 ** 2 / mse)


@dataclass
class TokenizerResult:
    """What the tokenizer view shows for one image.

    Attributes:
        original (np.ndarray): the input as the tokenizer saw it.
        reconstruction (np.ndarray): decoded from all sub-codebooks.
        branches (list[np.ndarray]): sub-codebook g's decode alone (the
            other branches at their mean over positions); empty for one
            codebook.
        code_maps (list[np.ndarray]): sub-codebook g's index map.
        psnr (float): of the reconstruction, dB.
        grid (tuple[int, int]): token grid ``(h, w)``.
        codebook_sizes (list[int]): entries per sub-codebook.
        seconds (float): wall time of encode and decodes.
    """
    original: np.ndarray
    reconstruction: np.ndarray
    branches: List[np.ndarray]
    code_maps: List[np.ndarray]
    psnr: float
    grid: Tuple[int, int]
    codebook_sizes: List[int]
    seconds: float

    @property
    def tokens(self) -> int:
        """Sub-tokens per image: positions x sub-codebooks."""
        return self.grid[0] * self.grid[1] * len(self.codebook_sizes)

    @property
    def bits(self) -> float:
        return self.grid[0] * self.grid[1] * float(
            sum(np.log2(self.codebook_sizes)))

    def summary(self) -> str:
        sizes = ' x '.join(str(s) for s in self.codebook_sizes)
        return (f'PSNR {self.psnr:.2f} dB | {self.grid[0]} x {self.grid[1]} '
                f'positions x {len(self.codebook_sizes)} sub-codebook(s) '
                f'({sizes} codes) = {self.tokens} tokens per image, '
                f'{self.bits:.0f} bits | {self.seconds:.2f} s')


@torch.no_grad()
def tokenize(tokenizer, image: Tensor, display: int = 256) -> TokenizerResult:
    """Encode ``image`` (``[1, 3, H, W]`` in [-1, 1]) and decode it whole
    and per sub-codebook.

    Args:
        tokenizer (ImageTokenizer): a shipped tokenizer.
        image (Tensor): one image.
        display (int): the images are upscaled (nearest) to about this
            width. Defaults to 256.
    """
    start = time.perf_counter()
    out = tokenizer.quantize(image)
    decoded = branch_reconstructions(tokenizer, image, ablate='mean')
    seconds = time.perf_counter() - start
    quantizer = tokenizer.quantizer
    size = int(quantizer.codebook_size)
    indices = out.indices[0]
    scale = max(1, display // image.shape[-1])
    return TokenizerResult(
        original=to_rgb_array(image[0], scale),
        reconstruction=to_rgb_array(decoded[0][0], scale),
        branches=[to_rgb_array(d[0], scale) for d in decoded[1:]],
        code_maps=[code_map(indices[g], size, display)
                   for g in range(indices.shape[0])],
        psnr=psnr(decoded[0], image), grid=tuple(indices.shape[-2:]),
        codebook_sizes=[size] * int(quantizer.num_codebooks),
        seconds=seconds)


# ------------------------------------------------------------- generator
@dataclass
class SampleSettings:
    """Everything that fixes a batch of samples."""
    class_index: int
    num: int = 8
    cfg_scale: float = 3.0
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0
    extra: Dict[str, str] = field(default_factory=dict)

    def check(self) -> 'SampleSettings':
        """Raises :class:`DemoInputError` for a setting out of range."""
        checks = [
            (0 <= self.class_index < len(CLASS_NAMES),
             f'class must be one of 0-{len(CLASS_NAMES) - 1}'),
            (1 <= self.num <= MAX_SAMPLES,
             f'number of samples must be 1-{MAX_SAMPLES}'),
            (self.cfg_scale >= 0, 'CFG scale must be >= 0'),
            (self.temperature >= 0, 'temperature must be >= 0'),
            (self.top_k >= 0, 'top-k must be >= 0 (0 keeps every code)'),
            (0 < self.top_p <= 1, 'top-p must be in (0, 1]'),
            (self.seed >= 0, 'seed must be >= 0'),
        ]
        for ok, message in checks:
            if not ok:
                raise DemoInputError(message)
        return self

    def reproduce(self, generator: str, tokenizer: str) -> str:
        """The Python lines that draw the same pictures."""
        seeds = f'range({self.seed}, {self.seed + self.num})'
        return '\n'.join([
            'import torch',
            'from fqzoo.apis import get_model',
            'from fqzoo.models.generators.sampling import rngs_for',
            f"gen, tok = get_model('{generator}'), get_model('{tokenizer}')",
            f'labels = torch.full(({self.num},), {self.class_index})',
            f'idx = gen.generate(labels, cfg_scale={self.cfg_scale:g}, '
            f'temperature={self.temperature:g}, top_k={self.top_k}, '
            f'top_p={self.top_p:g}, rng=rngs_for({seeds}))',
            'images = tok.decode(idx)  # [-1, 1], NCHW',
        ])


def sample(generator, tokenizer, settings: SampleSettings,
           progress: Optional[Callable[[int, int], None]] = None
           ) -> np.ndarray:
    """uint8 samples ``[num, H, W, 3]`` of ``settings.class_index``.

    Args:
        generator (AutoregressiveGenerator): a shipped generator.
        tokenizer (ImageTokenizer): the tokenizer of its codes.
        settings (SampleSettings): checked here.
        progress (callable, optional): called as ``progress(done, total)``
            after each position is drawn.
    """
    settings.check()
    total = generator.grid_size[0] * generator.grid_size[1]
    done = [0]

    def tick(*_) -> None:
        done[0] += 1
        if progress is not None:
            progress(min(done[0], total), total)

    handle = generator.backbone.register_forward_hook(tick)
    try:
        labels = torch.full((settings.num, ), settings.class_index)
        seeds = range(settings.seed, settings.seed + settings.num)
        with torch.no_grad():
            idx = generator.generate(
                labels, cfg_scale=settings.cfg_scale,
                temperature=settings.temperature, top_k=settings.top_k,
                top_p=settings.top_p, rng=rngs_for(seeds))
            images = tokenizer.decode(idx)
    finally:
        handle.remove()
    return to_uint8(images.clamp(-1, 1)).permute(0, 2, 3, 1).numpy()


def tile(images: Sequence[np.ndarray], columns: int = 4, scale: int = 3,
         pad: int = 2) -> np.ndarray:
    """Images ``[H, W, 3]`` in a grid (white gaps), upscaled ``scale``x."""
    images = [im.repeat(scale, 0).repeat(scale, 1) for im in images]
    height, width = images[0].shape[:2]
    rows = (len(images) + columns - 1) // columns
    columns = min(columns, len(images))
    grid = np.full((rows * (height + pad) + pad,
                    columns * (width + pad) + pad, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, columns)
        top, left = pad + r * (height + pad), pad + c * (width + pad)
        grid[top:top + height, left:left + width] = im
    return grid
