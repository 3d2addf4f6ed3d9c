"""Vector quantization (VQ-VAE, van den Oord et al. 2017; VQGAN, Esser et al.
2021) with the l2-normalised low-dimensional codebook of ViT-VQGAN / LlamaGen.

Options: EMA codebook updates (VQ-VAE appendix; Razavi et al. 2019), k-means
initialisation from the first training batch (Zeghidour et al. 2021,
SoundStream) and dead-code restart from current encoder outputs (Dhariwal et
al. 2020, Jukebox).
"""
from typing import Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from fqzoo.registry import QUANTIZERS

from .base import (
    BaseQuantizer,
    CodeUsage,
    QuantizerOutput,
    check_sizes,
    codebook_metrics,
    dist_ready,
    global_code_counts,
    pass_gradient,
)
from .search import entropy_loss, nearest_code


@torch.no_grad()
def kmeans(x: Tensor, num_clusters: int, iters: int = 10,
           spherical: bool = False) -> Tensor:
    """Lloyd's k-means on the rows of ``x``; empty clusters keep their seed.

    Args:
        x (Tensor): ``[N, D]`` samples.
        num_clusters (int): K; seeds are sampled with replacement when
            ``N < K``.
        iters (int): Lloyd iterations. Defaults to 10.
        spherical (bool): l2-normalise the centroids. Defaults to False.

    Returns:
        Tensor: ``[K, D]`` centroids.
    """
    if x.shape[0] >= num_clusters:
        seeds = torch.randperm(x.shape[0], device=x.device)[:num_clusters]
    else:
        seeds = torch.randint(x.shape[0], (num_clusters,), device=x.device)
    centroids = x[seeds].clone()
    for _ in range(iters):
        assign = nearest_code(x, centroids)
        counts = torch.bincount(assign, minlength=num_clusters)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        hit = counts > 0
        centroids[hit] = sums[hit] / counts[hit, None].to(x.dtype)
        if spherical:
            centroids = F.normalize(centroids, dim=-1)
    return centroids


def broadcast_(tensor: Tensor) -> Tensor:
    """Make every process hold rank 0's ``tensor`` (no-op when
    ``torch.distributed`` is not initialised)."""
    if dist_ready():
        dist.broadcast(tensor, src=0)
    return tensor


def gather_rows(x: Tensor) -> Tensor:
    """The rows of ``x`` from every process, concatenated in rank order
    (``x`` itself when ``torch.distributed`` is not initialised).

    Processes may hold different numbers of rows.

    Args:
        x (Tensor): ``[N_rank, ...]`` rows of this process.

    Returns:
        Tensor: ``[sum of N_rank, ...]``, the same on every process.
    """
    if not dist_ready():
        return x
    size = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.empty_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    sizes = [int(n) for n in sizes]
    padded = x.new_zeros(max(sizes), *x.shape[1:])
    padded[:x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([part[:n] for part, n in zip(parts, sizes)])


@QUANTIZERS.register_module()
class VectorQuantizer(BaseQuantizer):
    """One codebook, nearest-neighbour lookup, straight-through gradient.

    Args:
        codebook_size (int): number of codes K. Defaults to 16384.
        embed_dim (int): code dimension D (channels of ``z``). Defaults to 8.
        l2_norm (bool): l2-normalise ``z`` and the codes before the lookup
            (cosine-similarity search). Defaults to True.
        beta (float): commitment loss weight. Defaults to 0.25.
        entropy_weight (float): weight of the entropy loss; 0 disables it.
            Defaults to 0.0.
        entropy_temperature (float): softmax temperature of the entropy
            loss. Defaults to 0.01.
        init_range (float, optional): uniform init bound of the codes.
            Defaults to ``1 / codebook_size``.
        ema (bool): update codes as an exponential moving average of their
            assigned vectors instead of by gradient (no ``loss_codebook``).
            Counts and sums are all-reduced across processes. Defaults to
            False.
        decay (float): EMA decay. Defaults to 0.99.
        eps (float): Laplace smoothing of the EMA counts. Defaults to 1e-5.
        kmeans_init (bool): initialise the codes by k-means on the first
            training batch, gathered from every process (rank 0's result is
            broadcast). Defaults to False.
        kmeans_iters (int): k-means iterations. Defaults to 10.
        dead_code_steps (int): a code not hit for this many training steps
            is dead. Defaults to 100.
        auto_restart (bool): re-seed dead codes at the start of every
            training forward (else only when :meth:`restart_dead_codes` is
            called, e.g. by ``CodebookHealthHook``). Defaults to False.
        stats_window (int): steps covered by :meth:`codebook_stats`.
            Defaults to 100.
        rotation_trick (bool): pass the gradient to ``z`` by the rotation
            trick (:func:`~fqzoo.models.quantizers.base.rotate_to`, arXiv
            2410.06424) instead of the straight-through copy. Defaults to
            False.

    Example:
        >>> vq = VectorQuantizer(codebook_size=512, embed_dim=8)
        >>> out = vq(torch.randn(2, 8, 4, 4))
        >>> out.indices.shape
        torch.Size([2, 1, 4, 4])
    """

    def __init__(self, codebook_size: int = 16384, embed_dim: int = 8, *,
                 l2_norm: bool = True, beta: float = 0.25,
                 entropy_weight: float = 0.0,
                 entropy_temperature: float = 0.01,
                 init_range: Optional[float] = None,
                 ema: bool = False, decay: float = 0.99, eps: float = 1e-5,
                 kmeans_init: bool = False, kmeans_iters: int = 10,
                 dead_code_steps: int = 100, auto_restart: bool = False,
                 stats_window: int = 100,
                 rotation_trick: bool = False) -> None:
        super().__init__()
        check_sizes(self, codebook_size=codebook_size, embed_dim=embed_dim,
                    kmeans_iters=kmeans_iters,
                    dead_code_steps=dead_code_steps,
                    stats_window=stats_window)
        self.codebook_size = codebook_size
        self.rotation_trick = rotation_trick
        self.embed_dim = self.in_channels = embed_dim
        self.l2_norm = l2_norm
        self.beta = beta
        self.entropy_weight = entropy_weight
        self.entropy_temperature = entropy_temperature
        self.ema = ema
        self.decay = decay
        self.eps = eps
        self.kmeans_iters = kmeans_iters
        self.auto_restart = auto_restart
        self.embedding = nn.Embedding(codebook_size, embed_dim)
        bound = init_range if init_range is not None else 1.0 / codebook_size
        nn.init.uniform_(self.embedding.weight, -bound, bound)
        if l2_norm:
            with torch.no_grad():
                self.embedding.weight.copy_(
                    F.normalize(self.embedding.weight, dim=-1))
        if ema:
            self.embedding.weight.requires_grad_(False)
            self.register_buffer('ema_count', torch.ones(codebook_size))
            self.register_buffer('ema_sum',
                                 self.embedding.weight.detach().clone())
        self.register_buffer('initted', torch.tensor(not kmeans_init))
        self.usage = CodeUsage(codebook_size, stats_window,
                               dead_after=dead_code_steps)
        self._recent: Optional[Tensor] = None

    def codebook(self) -> Tensor:
        weight = self.embedding.weight
        return F.normalize(weight, dim=-1) if self.l2_norm else weight

    def forward(self, z: Tensor) -> QuantizerOutput:
        b, _, h, w = z.shape
        flat = rearrange(z, 'b c h w -> (b h w) c')
        if self.l2_norm:
            flat = F.normalize(flat, dim=-1)
        if self.training:
            self._prepare_codebook(flat.detach())
        codebook = self.codebook()
        if self.ema:
            # The EMA step below rewrites the weight in place; the entropy
            # loss recomputes from its input in backward.
            codebook = codebook.clone()
        indices = nearest_code(flat.detach(), codebook.detach())
        z_q = codebook[indices]
        losses = {}
        if self.training:
            losses.update(self._losses(flat, z_q, codebook))
            self._track(flat.detach(), indices)
        z_q = pass_gradient(flat, z_q, self.rotation_trick)
        quantized = rearrange(z_q, '(b h w) c -> b c h w', b=b, h=h, w=w)
        indices = rearrange(indices, '(b h w) -> b 1 h w', b=b, h=h, w=w)
        return QuantizerOutput(quantized, indices, losses,
                               codebook_metrics(indices, self.codebook_size))

    def embed_indices(self, indices: Tensor) -> Tensor:
        codes = self.codebook()[indices[:, 0]]
        return rearrange(codes, 'b h w c -> b c h w')

    def _losses(self, flat: Tensor, z_q: Tensor,
                codebook: Tensor) -> dict:
        losses = {'loss_commit': self.beta * F.mse_loss(flat, z_q.detach())}
        if not self.ema:
            losses['loss_codebook'] = F.mse_loss(z_q, flat.detach())
        if self.entropy_weight > 0:
            losses['loss_entropy'] = self.entropy_weight * entropy_loss(
                flat, codebook, self.entropy_temperature, self.l2_norm)
        return losses

    # ------------------------------------------------------ codebook upkeep
    @torch.no_grad()
    def _prepare_codebook(self, flat: Tensor) -> None:
        """k-means init on the first batch of all processes; automatic
        dead-code restart from the previous batch (before this step's graph
        uses the weight)."""
        if not bool(self.initted):
            centroids = broadcast_(kmeans(gather_rows(flat),
                                          self.codebook_size,
                                          self.kmeans_iters, self.l2_norm))
            everything = torch.ones(self.codebook_size, dtype=torch.bool,
                                    device=flat.device)
            self._set_codes(everything, centroids)
            self.initted.fill_(True)
        if self.auto_restart:
            self.restart_dead_codes()

    @torch.no_grad()
    def _track(self, flat: Tensor, indices: Tensor) -> None:
        counts = global_code_counts(indices, self.codebook_size)
        self.usage.update(counts)
        self._recent = flat
        if self.ema:
            sums = torch.zeros_like(self.ema_sum).index_add_(
                0, indices, flat.to(self.ema_sum))
            if dist_ready():
                dist.all_reduce(sums)
            self.ema_count.lerp_(counts.to(self.ema_count), 1 - self.decay)
            self.ema_sum.lerp_(sums, 1 - self.decay)
            total = self.ema_count.sum()
            smoothed = ((self.ema_count + self.eps)
                        / (total + self.codebook_size * self.eps) * total)
            self.embedding.weight.copy_(self.ema_sum / smoothed[:, None])

    @torch.no_grad()
    def _set_codes(self, mask: Tensor, codes: Tensor) -> None:
        self.embedding.weight[mask] = codes
        if self.ema:
            self.ema_sum[mask] = codes
            self.ema_count[mask] = 1.0

    @torch.no_grad()
    def restart_dead_codes(self) -> int:
        """Re-seed codes unused for ``dead_code_steps`` steps with encoder
        outputs of the last training batch of all processes (rank 0's draw
        is broadcast).

        Returns:
            int: number of codes re-seeded.
        """
        mask = self.usage.dead_mask()
        num_dead = int(mask.sum())
        if num_dead == 0 or self._recent is None:
            return 0
        recent = gather_rows(self._recent)
        pick = torch.randint(recent.shape[0], (num_dead,),
                             device=recent.device)
        codes = broadcast_(recent[pick].to(self.embedding.weight))
        self._set_codes(mask, codes)
        self.usage.mark_restarted(mask)
        return num_dead
