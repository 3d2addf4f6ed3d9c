"""Processes that make the shards of one run together (sampling, code
extraction: :mod:`fqzoo.utils.shards`), started by ``torchrun``.

NCCL with one GPU per process where CUDA is available, gloo on CPU. The
process group gets a long timeout: rank 0 may still be hashing checkpoints
or assembling outputs while the others wait at a barrier.
"""
import gc
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Optional

import torch
import torch.distributed as dist

from fqzoo.utils.shards import no_barrier

TIMEOUT = timedelta(hours=6)


@dataclass
class DistContext:
    """Where this process stands: ``rank`` of ``world_size``, its
    ``device``, and ``barrier`` (a no-op alone)."""

    rank: int
    world_size: int
    device: torch.device
    barrier: Callable[[], None]


def init_processes(launcher: str = 'none',
                   device: Optional[str] = None) -> DistContext:
    """Join the process group of a ``torchrun`` job, or run alone.

    Args:
        launcher (str): ``'none'`` (one process) or ``'pytorch'``
            (``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``).
            Defaults to 'none'.
        device (str, optional): alone, the device to use; under
            ``torchrun`` 'cpu' forces CPU (gloo), otherwise each process
            takes ``cuda:LOCAL_RANK`` when CUDA is available. Defaults to
            None (CUDA when available).

    Returns:
        DistContext: rank, world size, device and barrier.
    """
    cuda = torch.cuda.is_available() and (device is None
                                          or not device.startswith('cpu'))
    if launcher == 'none':
        return DistContext(0, 1, torch.device(device or
                                              ('cuda' if cuda else 'cpu')),
                           no_barrier)
    if launcher != 'pytorch':
        raise ValueError(f"launcher must be 'none' or 'pytorch', got "
                         f'{launcher!r}')
    local_rank = int(os.environ.get('LOCAL_RANK', 0))
    if cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend='nccl' if cuda else 'gloo',
                                timeout=TIMEOUT)
    target = torch.device('cuda', local_rank) if cuda else torch.device('cpu')
    return DistContext(dist.get_rank(), dist.get_world_size(), target,
                       dist.barrier)


def close_processes() -> None:
    """Leave the process group, if any, and free it now.

    Objects in reference cycles that hold the group (a finished MMEngine
    Runner with its loops and hooks, and its FSDP or DDP model) keep it
    alive until the garbage collector runs; left to the interpreter's exit,
    the group's gloo threads can find Python finalizing and abort the
    process after all its work is done ('terminate called without an active
    exception', SIGABRT). Collecting them first frees the group, and joins
    its threads, here.
    """
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()
