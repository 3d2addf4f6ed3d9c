"""Sampling at scale by the released protocol: the sample scripts of
LlamaGen (FoundationVision/LlamaGen ``autoregressive/sample/
sample_c2i_ddp.py``) and FQGAN's FAR (showlab/FQGAN ``autoregressive/
sample/sample_c2i_ddp_dual_code.py``), which produced the papers' numbers.

What those scripts do, and what is reproduced here:

- **Streams.** Each of their ``W`` processes (``rank`` r) seeds torch's
  global generator once with ``global_seed * W + r`` and then, batch after
  batch of ``n`` (``--per-proc-batch-size``), draws the labels
  ``torch.randint(0, num_classes, (n,))`` and the tokens from that one
  stream. Here each stream is one ``torch.Generator`` on the generator's
  device seeded alike (on CUDA, the stream of ``torch.manual_seed``), so a
  run reproduces a release run of ``W`` processes whatever number of
  processes draws it.
- **Order.** Row i of batch j of stream r is sample
  ``j * n * W + i * W + r``; ``ceil(N / (n W))`` batches per stream are
  drawn and samples from index N on are dropped.
- **Tokens**: ``generate(..., protocol='released')`` (temperature before
  filtering, the guidance gate, ``cfg_interval``).
- **Images**: decoded, resized bicubically to ``--image-size-eval`` when it
  differs (``F.interpolate(..., mode='bicubic')``, LlamaGen's 384-px
  models to 256), then ``clamp(127.5 x + 128, 0, 255)`` cast to uint8.

The streams are the shards of the shard engine (:mod:`fqzoo.utils.shards`:
settings guard, checkpoints by content, split over processes). A stream's
batches depend on every batch before them, so a stream is written in
chunks of whole batches (``stream_<r>_<k>.npz``), each holding the
stream's random state after it: a resumed run continues every stream from
its last complete chunk. Rank 0 writes ``samples.npz`` (in sample
order), grids and ``sampling.json`` as :mod:`fqzoo.generation.outputs`
does for fqzoo's protocol.
"""
import math
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from fqzoo.errors import InputError
from fqzoo.utils.files import write_json_atomic
from fqzoo.utils.shards import ShardRun, no_barrier
from fqzoo.utils.token_layout import index_dtype

from .outputs import (
    GRID,
    RECORD,
    SAMPLES,
    samples_complete,
    timings,
    write_grids,
)
from .provenance import check_pairing
from .shards import (
    load_json,
    npz_complete,
    read_shard,
    write_npz_streamed,
    write_shard,
)

EvalSize = Union[int, str, None]
# The release scripts' default --image-size-eval.
RELEASED_EVAL_SIZE = 256
CHUNK_KEYS = ('tokens', 'images', 'labels', 'index', 'seconds', 'rng_state')


def stream_seed(seed: int, stream: int, streams: int) -> int:
    """The seed of stream (release rank) ``stream`` of ``streams``:
    ``seed * streams + stream``."""
    return int(seed) * int(streams) + int(stream)


def batches_per_stream(num: int, batch_size: int, streams: int) -> int:
    """Batches each stream draws: ``ceil(num / (batch_size * streams))``."""
    if num < 1 or batch_size < 1 or streams < 1:
        raise InputError(f'num ({num}), batch_size ({batch_size}) and '
                         f'streams ({streams}) must be >= 1')
    return math.ceil(num / (batch_size * streams))


def sample_index(batch: int, stream: int, batch_size: int,
                 streams: int) -> np.ndarray:
    """Sample numbers of the rows of batch ``batch`` of stream ``stream``:
    ``batch * batch_size * streams + row * streams + stream``."""
    rows = np.arange(batch_size, dtype=np.int64)
    return batch * batch_size * streams + rows * streams + stream


def draw_labels(rng: torch.Generator, batch_size: int,
                num_classes: int) -> Tensor:
    """A batch's classes as the release scripts draw them:
    ``torch.randint(0, num_classes, (batch_size,))`` from the stream."""
    return torch.randint(0, num_classes, (batch_size, ), generator=rng,
                         device=rng.device)


def eval_side(eval_size: EvalSize, side: int) -> int:
    """The side images are evaluated at: ``'auto'`` resizes images larger
    than 256 px to 256 (the release scripts' ``--image-size-eval`` default,
    LlamaGen's 384-px models) and keeps smaller ones; None keeps the
    decoded size; an int is that size."""
    if eval_size is None:
        return side
    if eval_size == 'auto':
        return min(side, RELEASED_EVAL_SIZE)
    if isinstance(eval_size, str) or int(eval_size) < 1:
        raise InputError(f"eval_size must be 'auto', None or a positive "
                         f'int, got {eval_size!r}')
    return int(eval_size)


def resize_for_eval(images: Tensor, eval_size: EvalSize) -> Tensor:
    """Float images ``[B, 3, S, S]`` resized as the release scripts do
    before saving (``F.interpolate(..., mode='bicubic')``, no clamping
    first) when :func:`eval_side` differs from ``S``."""
    side = eval_side(eval_size, images.shape[-1])
    images = images.float()
    if side != images.shape[-1] or side != images.shape[-2]:
        images = F.interpolate(images, size=(side, side), mode='bicubic')
    return images


def released_uint8(images: Tensor, eval_size: EvalSize = 'auto'
                   ) -> np.ndarray:
    """Decoded images ``[B, 3, S, S]`` (about [-1, 1]) as the release
    scripts save them: bicubic resize when the evaluation side differs,
    then ``clamp(127.5 x + 128, 0, 255)`` truncated to uint8, as
    ``[B, H, W, 3]``."""
    images = torch.clamp(127.5 * resize_for_eval(images, eval_size) + 128.0,
                         0, 255)
    return images.permute(0, 2, 3, 1).to('cpu', dtype=torch.uint8).numpy()


def chunk_path(out_dir: Union[str, Path], stream: int, chunk: int) -> Path:
    """``out_dir/stream_{stream:03d}_{chunk:05d}.npz``."""
    return Path(out_dir) / f'stream_{stream:03d}_{chunk:05d}.npz'


def chunk_batches(batches: int, chunk_size: int) -> List[Tuple[int, int]]:
    """``[first, stop)`` batches of each chunk of a stream."""
    return [(first, min(first + chunk_size, batches))
            for first in range(0, batches, chunk_size)]


def chunk_index(stream: int, first: int, stop: int, batch_size: int,
                streams: int) -> np.ndarray:
    """Sample numbers of batches ``first ... stop - 1`` of a stream."""
    return np.concatenate([sample_index(b, stream, batch_size, streams)
                           for b in range(first, stop)])


def chunk_complete(path: Path, index: np.ndarray) -> bool:
    """Whether a chunk file reads back whole with these sample numbers."""
    return npz_complete(path, CHUNK_KEYS, dict(index=index),
                        ('tokens', 'images', 'labels'))


@torch.no_grad()
def draw_tokens(generator, rng: torch.Generator, batch_size: int,
                **sampling) -> Tuple[Tensor, Tensor]:
    """Labels ``[B]`` and tokens ``[B, G, h, w]`` of one batch of a stream,
    in the release's order: the labels, then the tokens.

    ``**sampling``: ``generate``'s arguments (``cfg_scale``,
    ``temperature``, ``top_k``, ``top_p``, ``cfg_interval``,
    ``use_cache``).
    """
    labels = draw_labels(rng, batch_size, generator.num_classes)
    return labels, generator.generate(labels, rng=rng, protocol='released',
                                      **sampling)


@torch.no_grad()
def draw_batch(generator, tokenizer, rng: torch.Generator, batch_size: int,
               eval_size: EvalSize = 'auto', **sampling
               ) -> Tuple[Tensor, Tensor, np.ndarray, Tuple[float, float]]:
    """One batch of a stream: labels, tokens, uint8 images.

    Args:
        generator (AutoregressiveGenerator): in eval mode.
        tokenizer (ImageTokenizer): its ``decode`` turns tokens to images.
        rng (torch.Generator): the stream, on the generator's device.
        batch_size (int): the release's ``--per-proc-batch-size``.
        eval_size (int | str | None): see :func:`eval_side`.
            Defaults to 'auto'.
        **sampling: ``generate``'s arguments (``cfg_scale``,
            ``temperature``, ``top_k``, ``top_p``, ``cfg_interval``,
            ``use_cache``).

    Returns:
        tuple: labels ``[B]`` and tokens ``[B, G, h, w]`` on CPU, images
        uint8 ``[B, H, W, 3]``, seconds generating and decoding.
    """
    start = time.perf_counter()
    labels, tokens = draw_tokens(generator, rng, batch_size, **sampling)
    _sync(labels.device)
    generated = time.perf_counter()
    device = next(tokenizer.parameters()).device
    images = released_uint8(tokenizer.decode(tokens.to(device)), eval_size)
    _sync(device)
    return (labels.cpu(), tokens.cpu(), images,
            (generated - start, time.perf_counter() - generated))


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def stream_complete(out_dir: Path, stream: int, *, streams: int,
                    batch_size: int, batches: int, chunk_size: int) -> bool:
    """Whether every chunk of ``stream`` is complete."""
    return all(chunk_complete(chunk_path(out_dir, stream, k),
                              chunk_index(stream, first, stop, batch_size,
                                          streams))
               for k, (first, stop) in enumerate(chunk_batches(batches,
                                                               chunk_size)))


def draw_stream(generator, tokenizer, out_dir: Path, stream: int, *,
                seed: int, streams: int, batch_size: int, batches: int,
                chunk_size: int, eval_size: EvalSize, sampling: dict,
                bar: Optional[tqdm] = None) -> None:
    """Draw the incomplete chunks of one stream, from the random state
    saved with its last complete chunk."""
    device = next(generator.parameters()).device
    rng = torch.Generator(device=device)
    rng.manual_seed(stream_seed(seed, stream, streams))
    dtype = index_dtype(max(generator.codebook_sizes))
    for chunk, (first, stop) in enumerate(chunk_batches(batches,
                                                        chunk_size)):
        path = chunk_path(out_dir, stream, chunk)
        index = chunk_index(stream, first, stop, batch_size, streams)
        if chunk_complete(path, index):
            with np.load(path) as data:
                rng.set_state(torch.from_numpy(data['rng_state']))
            if bar is not None:
                bar.update(len(index))
            continue
        parts: Dict[str, list] = dict(labels=[], tokens=[], images=[])
        seconds = np.zeros(2)
        for _ in range(first, stop):
            labels, tokens, images, times = draw_batch(
                generator, tokenizer, rng, batch_size, eval_size, **sampling)
            parts['labels'].append(labels.numpy().astype(np.int64))
            parts['tokens'].append(tokens.numpy().astype(dtype))
            parts['images'].append(images)
            seconds += times
            if bar is not None:
                bar.update(batch_size)
        write_shard(path, index=index, seconds=seconds,
                    rng_state=rng.get_state().numpy(),
                    **{k: np.concatenate(v) for k, v in parts.items()})


class _ChunkReader:
    """Reads the chunks of every stream, chunk by chunk, and yields their
    samples in sample order (numbers below ``num``)."""

    def __init__(self, out_dir: Path, streams: int, num_chunks: int,
                 num: int, grid_classes: int, per_class: int) -> None:
        self.out_dir, self.streams = out_dir, streams
        self.num_chunks, self.num = num_chunks, num
        self.per_class = per_class
        self.firsts: Dict[int, List[np.ndarray]] = {
            c: [] for c in range(grid_classes)}
        self.seconds = np.zeros(2)

    def _chunk(self, chunk: int, keys: Tuple[str, ...]) -> Dict:
        parts = [read_shard(chunk_path(self.out_dir, s, chunk))
                 for s in range(self.streams)]
        index = np.concatenate([p['index'] for p in parts])
        order = np.argsort(index, kind='stable')
        keep = order[index[order] < self.num]
        out = {k: np.concatenate([p[k] for p in parts])[keep] for k in keys}
        out['seconds'] = sum(p['seconds'] for p in parts)
        return out

    def labels(self) -> np.ndarray:
        return np.concatenate([self._chunk(k, ('labels', ))['labels']
                               for k in range(self.num_chunks)])

    def tokens_info(self) -> Tuple[List[int], str]:
        tokens = read_shard(chunk_path(self.out_dir, 0, 0))['tokens']
        return list(tokens.shape[1:]), tokens.dtype.name

    def images(self) -> Iterator[np.ndarray]:
        for chunk in range(self.num_chunks):
            data = self._chunk(chunk, ('labels', 'images'))
            self.seconds += data['seconds']
            for label, image in zip(data['labels'], data['images']):
                kept = self.firsts.get(int(label))
                if kept is not None and len(kept) < self.per_class:
                    kept.append(image)
            yield data['images']


def _assemble(out: Path, streams: int, num_chunks: int, num: int,
              num_classes: int, positions: int, record: dict) -> dict:
    """``samples.npz`` in sample order, grids and ``sampling.json``."""
    reader = _ChunkReader(out, streams, num_chunks, num,
                          grid_classes=min(num_classes, 50), per_class=64)
    labels = reader.labels()
    first = read_shard(chunk_path(out, 0, 0))['images']
    write_npz_streamed(out / SAMPLES, [
        ('arr_0', (num, *first.shape[1:]), np.uint8, reader.images()),
        ('arr_1', (num, ), np.int64, [labels])])
    grids = write_grids(out, {c: v for c, v in reader.firsts.items() if v})
    token_shape, token_dtype = reader.tokens_info()
    generate_s, decode_s = (float(s) for s in reader.seconds)
    drawn = record['sampling']['drawn']
    counts = np.bincount(labels, minlength=num_classes)
    record = dict(
        record, samples=SAMPLES, num=num,
        per_class={str(c): int(n) for c, n in enumerate(counts)},
        image_shape=list(first.shape[1:]), token_shape=token_shape,
        token_dtype=token_dtype,
        timings=timings(
            generate_s, decode_s, drawn, positions,
            note='summed over every stream\'s chunks, including the '
                 'samples drawn past num; a token is one position'),
        grids=grids)
    write_json_atomic(out / RECORD, record)
    return record


def run_released_sampling(generator, tokenizer, out_dir: Union[str, Path],
                          *, num: int, cfg_scale=1.0, temperature=1.0,
                          top_k=0, top_p=1.0, cfg_interval: float = -1,
                          use_cache: bool = True, seed: int = 0,
                          batch_size: int = 32,
                          streams: Optional[int] = None,
                          eval_size: EvalSize = 'auto',
                          chunk_size: int = 32, rank: int = 0,
                          world_size: int = 1,
                          barrier: Callable[[], None] = no_barrier,
                          identity: Optional[dict] = None,
                          info: Optional[dict] = None,
                          eval_command: Optional[str] = None,
                          progress: bool = True) -> Optional[dict]:
    """Draw ``num`` samples into ``out_dir`` as the release scripts do.

    Args:
        generator (AutoregressiveGenerator): in eval mode.
        tokenizer (ImageTokenizer): in eval mode.
        out_dir (str | Path): the run folder (created).
        num (int): samples (the release's ``--num-fid-samples``).
        cfg_scale, temperature, top_k, top_p: ``generate``'s sampling
            arguments, one value or one per sub-token.
        cfg_interval (float): LlamaGen's ``--cfg-interval``. Defaults to -1.
        use_cache (bool): KV caches (same tokens). Defaults to True.
        seed (int): the release's ``--global-seed``. Defaults to 0.
        batch_size (int): the release's ``--per-proc-batch-size`` (the
            samples depend on it). Defaults to 32.
        streams (int, optional): the number of release processes ``W``
            (the samples depend on it: the papers used 8). Defaults to
            ``world_size``.
        eval_size (int | str | None): the release's ``--image-size-eval``;
            ``'auto'``: 256 for larger images (:func:`eval_side`).
            Defaults to 'auto'.
        chunk_size (int): batches per chunk file. Defaults to 32.
        rank, world_size, barrier: this process among those drawing
            together (stream r is drawn by rank ``r % world_size``).
        identity (dict, optional): checkpoints by content and config
            hashes: with the sampling arguments, the settings a resumed run
            must match.
        info (dict, optional): recorded in ``sampling.json``; its
            ``generator`` and ``tokenizer`` entries are checked to belong
            together (:func:`~fqzoo.generation.provenance.check_pairing`).
        eval_command (str, optional): recorded in ``sampling.json``.
        progress (bool): a progress bar on rank 0. Defaults to True.

    Returns:
        dict | None: the ``sampling.json`` record on rank 0, else None.

    Raises:
        InputError: a generator and a tokenizer that do not belong
            together, or a folder made with other settings.
    """
    out = Path(out_dir)
    streams = world_size if streams is None else int(streams)
    batches = batches_per_stream(num, batch_size, streams)
    if chunk_size < 1:
        raise InputError(f'chunk_size must be >= 1, got {chunk_size}')
    sampling = dict(cfg_scale=cfg_scale, temperature=temperature,
                    top_k=top_k, top_p=top_p, cfg_interval=cfg_interval)
    settings = dict(identity or {}, protocol='released', num=num, seed=seed,
                    batch_size=batch_size, streams=streams,
                    eval_size=eval_size, chunk_size=chunk_size,
                    rng_device=next(generator.parameters()).device.type,
                    **sampling)
    check_pairing(generator, tokenizer, info)
    run = ShardRun(out, settings, total=streams, shard_size=1,
                   what='samples', shard_patterns=['stream_*.npz'],
                   outputs=[RECORD, SAMPLES, GRID, 'grid_class_*.png'],
                   rank=rank, world_size=world_size, barrier=barrier)
    run.open()
    todo = run.todo(lambda stream: stream_complete(
        out, stream, streams=streams, batch_size=batch_size,
        batches=batches, chunk_size=chunk_size))
    done = load_json(out / RECORD)
    if not todo and done is not None and samples_complete(out / SAMPLES, num) \
            and done.get('settings') == run.recorded_settings():
        return done if rank == 0 else None
    num_chunks = len(chunk_batches(batches, chunk_size))
    mine = run.mine(todo)
    start_time = time.time()
    with tqdm(total=len(mine) * batches * batch_size, unit='img',
              disable=not (progress and rank == 0),
              dynamic_ncols=True) as bar:
        for stream in mine:
            draw_stream(generator, tokenizer, out, stream, seed=seed,
                        streams=streams, batch_size=batch_size,
                        batches=batches, chunk_size=chunk_size,
                        eval_size=eval_size,
                        sampling=dict(sampling, use_cache=use_cache),
                        bar=bar)
    if not run.finish():
        return None
    record = dict(
        info or {}, protocol='released',
        sampling=dict(sampling, use_cache=use_cache, seed=seed,
                      batch_size=batch_size, streams=streams,
                      eval_size=eval_size, num=num,
                      drawn=batches * batch_size * streams,
                      labels='torch.randint(0, num_classes, (batch_size,)) '
                             'from stream r, seeded seed * streams + r',
                      order='batch * batch_size * streams + row * streams '
                            '+ stream'),
        settings=run.recorded_settings(),
        run=dict(world_size=world_size, drawn_streams=len(todo),
                 wall_seconds=round(time.time() - start_time, 3)),
        eval_command=eval_command)
    return _assemble(out, streams, num_chunks, num, generator.num_classes,
                     generator.grid_size[0] * generator.grid_size[1],
                     record)
