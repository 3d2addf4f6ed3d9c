"""Class-conditional sampling at scale: batched, sharded, resumable,
spread over processes.

:func:`run_sampling` draws ``num`` samples, exactly ``num / C`` of each of
the ``C`` classes asked for; sample ``i`` has class ``classes[i % C]`` and
its own seed ``seed + i`` (:mod:`fqzoo.generation.plan`), drawn with its own
``torch.Generator``, so its tokens do not depend on the batch, the shard or
the process that draws it. Samples are written in shards
(:mod:`fqzoo.generation.shards`, by the shard engine
:mod:`fqzoo.utils.shards`); a run started again skips the complete shards,
and a finished run started again does nothing (a truncated ``samples.npz``
is written again). With several processes (``torchrun``), each draws its
share of the shards and rank 0 assembles the outputs after a barrier
(:mod:`fqzoo.generation.outputs`).
"""
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from fqzoo.models.generators.sampling import rngs_for
from fqzoo.utils.images import to_uint8
from fqzoo.utils.shards import ShardRun, no_barrier
from fqzoo.utils.token_layout import index_dtype

from .outputs import GRID, RECORD, SAMPLES, assemble_outputs, samples_complete
from .plan import balanced_labels, check_classes, sample_seeds
from .provenance import check_pairing
from .released import resize_for_eval
from .shards import (
    load_json,
    shard_complete,
    shard_path,
    write_shard,
)

SamplingArg = Union[float, int, Sequence[float], Sequence[int]]


def _device(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


@torch.no_grad()
def sample_batch(generator, tokenizer, labels: np.ndarray, seeds: np.ndarray,
                 eval_size: Optional[int] = None, **sampling
                 ) -> Tuple[Tensor, np.ndarray, Tuple[float, float]]:
    """Tokens and decoded images of one batch, each sample with its seed.

    Args:
        generator (AutoregressiveGenerator): in eval mode.
        tokenizer (ImageTokenizer): its ``decode`` turns tokens to images.
        labels (np.ndarray): ``[B]`` classes.
        seeds (np.ndarray): ``[B]`` seeds, one ``torch.Generator`` each (on
            the generator's device type: CPU and CUDA draw different
            streams from one seed).
        eval_size (int, optional): side the decoded images are resized to
            (bicubic, as the release scripts' ``--image-size-eval``).
            Defaults to None (as decoded).
        **sampling: ``generate``'s arguments (``cfg_scale``,
            ``temperature``, ``top_k``, ``top_p``, ``use_cache``,
            ``cfg_schedule``, ``cfg_interval``).

    Returns:
        tuple: ``LongTensor[B, G, h, w]`` on CPU, uint8 images
        ``[B, H, W, 3]`` and the seconds spent generating and decoding.
    """
    device = _device(generator)
    start = time.perf_counter()
    tokens = generator.generate(
        torch.as_tensor(labels, device=device),
        rng=rngs_for(seeds.tolist(), device=device), **sampling)
    _sync(device)
    generated = time.perf_counter()
    tok_device = _device(tokenizer)
    images = resize_for_eval(tokenizer.decode(tokens.to(tok_device)),
                             eval_size)
    images = to_uint8(images).permute(0, 2, 3, 1).cpu().numpy()
    _sync(tok_device)
    decoded = time.perf_counter()
    return tokens.cpu(), images, (generated - start, decoded - generated)


def sample_shards(generator, tokenizer, out_dir: Union[str, Path],
                  labels: np.ndarray, ranges: Sequence[Tuple[int, int]],
                  shards: Sequence[int], *, seed: int, batch_size: int,
                  sampling: dict, progress: bool = True) -> None:
    """Draw and write the given shards, in batches.

    Args:
        generator (AutoregressiveGenerator): in eval mode.
        tokenizer (ImageTokenizer): in eval mode.
        out_dir (str | Path): the run folder.
        labels (np.ndarray): ``[N]`` the class of every sample of the run.
        ranges (Sequence[tuple]): ``[start, stop)`` of every shard.
        shards (Sequence[int]): the shards to draw.
        seed (int): base seed (sample ``i`` uses ``seed + i``).
        batch_size (int): samples per ``generate`` call.
        sampling (dict): ``generate``'s sampling arguments.
        progress (bool): a tqdm bar with images/s and tokens/s.
            Defaults to True.
    """
    dtype = index_dtype(max(generator.codebook_sizes))
    positions = generator.grid_size[0] * generator.grid_size[1]
    total = sum(ranges[s][1] - ranges[s][0] for s in shards)
    gen_seconds, drawn = 0.0, 0
    with tqdm(total=total, unit='img', disable=not progress,
              dynamic_ncols=True) as bar:
        for shard in shards:
            start, stop = ranges[shard]
            parts: Dict[str, List[np.ndarray]] = dict(tokens=[], images=[])
            seconds = np.zeros(2)
            for first in range(start, stop, batch_size):
                last = min(first + batch_size, stop)
                tokens, images, times = sample_batch(
                    generator, tokenizer, labels[first:last],
                    sample_seeds(first, last, seed), **sampling)
                parts['tokens'].append(tokens.numpy().astype(dtype))
                parts['images'].append(images)
                seconds += times
                gen_seconds += times[0]
                drawn += last - first
                bar.update(last - first)
                rate = drawn * positions / max(gen_seconds, 1e-9)
                bar.set_postfix(tokens_per_s=f'{rate:.0f}')
            write_shard(shard_path(out_dir, shard),
                        tokens=np.concatenate(parts['tokens']),
                        images=np.concatenate(parts['images']),
                        labels=labels[start:stop],
                        seeds=sample_seeds(start, stop, seed),
                        seconds=seconds)


def run_sampling(generator, tokenizer, out_dir: Union[str, Path], *,
                 num: int, classes: Optional[Sequence[int]] = None,
                 cfg_scale: SamplingArg = 1.0, temperature: SamplingArg = 1.0,
                 top_k: SamplingArg = 0, top_p: SamplingArg = 1.0,
                 cfg_schedule: str = 'constant', cfg_interval: float = -1,
                 eval_size: Optional[int] = None, use_cache: bool = True,
                 seed: int = 0, batch_size: int = 32, shard_size: int = 1000,
                 rank: int = 0, world_size: int = 1,
                 barrier: Callable[[], None] = no_barrier,
                 identity: Optional[dict] = None,
                 info: Optional[dict] = None,
                 eval_command: Optional[str] = None,
                 progress: bool = True) -> Optional[dict]:
    """Draw ``num`` class-balanced samples into ``out_dir``.

    Writes ``shard_*.npz`` (:mod:`fqzoo.generation.shards`), then, on rank
    0, ``samples.npz`` (``arr_0``: uint8 ``[N, H, W, 3]``, ``arr_1``:
    labels), ``grid_class_<c>.png``, ``grid.png`` and ``sampling.json``
    (:mod:`fqzoo.generation.outputs`).

    Args:
        generator (AutoregressiveGenerator): in eval mode.
        tokenizer (ImageTokenizer): in eval mode.
        out_dir (str | Path): the run folder (created).
        num (int): samples, a multiple of the number of classes.
        classes (Sequence[int], optional): Defaults to every class of the
            generator.
        cfg_scale, temperature, top_k, top_p: ``generate``'s sampling
            arguments, one value or one per sub-token.
        cfg_schedule (str): Defaults to 'constant'.
        cfg_interval (float): LlamaGen's ``cfg_interval`` (-1: every
            position guided). Defaults to -1.
        eval_size (int | str, optional): side the images are resized to,
            bicubic, before they are saved (``'auto'``: 256 for larger
            images, LlamaGen's 384-px models). Defaults to None (as
            decoded).
        use_cache (bool): KV caches (same tokens, faster). Defaults to True.
        seed (int): sample ``i`` is drawn with seed ``seed + i``.
            Defaults to 0.
        batch_size (int): samples per ``generate`` call. Defaults to 32.
        shard_size (int): samples per shard file. Defaults to 1000.
        rank (int): this process. Defaults to 0.
        world_size (int): processes drawing together. Defaults to 1.
        barrier (Callable[[], None]): waits for every process (e.g.
            ``torch.distributed.barrier``). Defaults to a no-op.
        identity (dict, optional): what else the samples depend on
            (checkpoints by content, config hashes): with the sampling
            arguments it forms the settings a resumed run must match.
        info (dict, optional): recorded in ``sampling.json`` (paths,
            configs); its ``generator`` and ``tokenizer`` entries
            (:func:`~fqzoo.generation.provenance.describe_model`) are
            checked to belong together.
        eval_command (str, optional): recorded in ``sampling.json``.
        progress (bool): a progress bar on rank 0. Defaults to True.

    Returns:
        dict | None: the ``sampling.json`` record on rank 0, else None.

    Raises:
        InputError: ``num`` not a multiple of the number of classes, bad
            classes (not whole numbers, out of range), a generator and a
            tokenizer that do not belong together
            (:func:`~fqzoo.generation.provenance.check_pairing`), or a
            folder made with other settings (shards made from a former
            content of the same checkpoint files are redone instead).
    """
    out = Path(out_dir)
    classes = check_classes(
        range(generator.num_classes) if classes is None else classes,
        generator.num_classes)
    labels = balanced_labels(num, classes)
    sampling = dict(cfg_scale=cfg_scale, temperature=temperature,
                    top_k=top_k, top_p=top_p, cfg_schedule=cfg_schedule)
    # recorded only when set, so folders made before they existed resume
    if cfg_interval != -1:
        sampling['cfg_interval'] = cfg_interval
    if eval_size is not None:
        sampling['eval_size'] = eval_size
    settings = dict(identity or {}, num=num, classes=classes, seed=seed,
                    shard_size=shard_size,
                    rng_device=_device(generator).type, **sampling)
    check_pairing(generator, tokenizer, info)
    run = ShardRun(out, settings, total=num, shard_size=shard_size,
                   what='samples', shard_patterns=['shard_*.npz'],
                   outputs=[RECORD, SAMPLES, GRID, 'grid_class_*.png'],
                   rank=rank, world_size=world_size, barrier=barrier)
    run.open()
    ranges = run.ranges
    todo = run.todo(lambda i: shard_complete(
        shard_path(out, i), labels[ranges[i][0]:ranges[i][1]],
        sample_seeds(*ranges[i], seed)))
    done = load_json(out / RECORD)
    if not todo and done is not None and samples_complete(out / SAMPLES, num) \
            and done.get('settings') == run.recorded_settings():
        return done if rank == 0 else None
    start_time = time.time()
    sample_shards(generator, tokenizer, out, labels, ranges, run.mine(todo),
                  seed=seed, batch_size=batch_size,
                  sampling=dict(sampling, use_cache=use_cache),
                  progress=progress and rank == 0)
    if not run.finish():
        return None
    record = dict(
        info or {},
        sampling=dict(sampling, use_cache=use_cache, seed=seed,
                      batch_size=batch_size, shard_size=shard_size,
                      num=num, classes=classes,
                      labels='classes[i % len(classes)]',
                      seeds='seed + i'),
        settings=run.recorded_settings(),
        run=dict(world_size=world_size, drawn_shards=len(todo),
                 wall_seconds=round(time.time() - start_time, 3)),
        eval_command=eval_command)
    return assemble_outputs(out, labels, ranges, classes, record=record,
                            positions=generator.grid_size[0]
                            * generator.grid_size[1])
