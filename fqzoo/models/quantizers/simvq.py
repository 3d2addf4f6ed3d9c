"""SimVQ ("Addressing Representation Collapse in Vector Quantized Models with
One Linear Layer", Zhu et al. 2024, arXiv 2411.02038).

The codebook is a frozen random matrix ``C [K, D]`` reparameterised through
one learned linear layer: the codes are ``W C + b``. Every gradient step on
``W`` moves the whole codebook, so no code is left behind (the paper reports
full usage at ``2^18`` codes). The nearest-code search runs on the projected
codebook with fqzoo's blocked search (:func:`~.search.nearest_code`).

Checked against the released module (youngsheen/SimVQ,
``taming/modules/vqvae/quantize.py``, class ``SimVQ``): same state-dict keys
(``embedding.weight`` frozen, ``embedding_proj.weight/bias``), indices,
quantized output, loss and gradients to ``z``, ``W`` and ``b``; the values
are pinned by ``tests/test_models/test_quantizers/test_simvq.py`` and the
comparison is re-run against a checkout by ``tools/dev/compare_released.py``
(docs/quantizers.md).
"""
import torch
from einops import rearrange
from torch import Tensor, nn

from fqzoo.registry import QUANTIZERS

from .base import (
    BaseQuantizer,
    CodeUsage,
    QuantizerOutput,
    check_sizes,
    codebook_metrics,
    commitment_losses,
    global_code_counts,
    pass_gradient,
)
from .search import nearest_code


@QUANTIZERS.register_module()
class SimVQ(BaseQuantizer):
    """Frozen random codebook through one learned linear layer.

    Losses (training only): ``loss_commit = beta * mse(z, sg(q))`` and
    ``loss_codebook = mse(q, sg(z))``, whose sum is the released module's
    loss with ``legacy=False`` (the released ImageNet config). The released
    class defaults to ``legacy=True``, which puts ``beta`` on the codebook
    term instead: ``beta_on_codebook=True`` reproduces it.

    One released quirk is not reproduced: its ``get_codebook_entry`` looks
    indices up in the frozen matrix without the linear layer, so decoding
    saved indices does not give the quantized latent; here
    :meth:`embed_indices` returns the projected codes (the contract).

    Args:
        codebook_size (int): number of codes K. Defaults to 16384.
        embed_dim (int): code dimension D (channels of ``z``). Defaults to 8.
        beta (float): commitment weight. Defaults to 0.25.
        beta_on_codebook (bool): the released ``legacy=True`` weighting:
            ``loss_commit = mse(z, sg(q))``, ``loss_codebook =
            beta * mse(q, sg(z))``. Defaults to False.
        bias (bool): the linear layer has a bias (the release's does;
            vector-quantize-pytorch's ``SimVQ`` has none). Defaults to True.
        freeze_codebook (bool): keep ``C`` frozen (the paper); False learns
            it too (the release's README says that works as well).
            Defaults to True.
        rotation_trick (bool): pass the gradient to ``z`` by the rotation
            trick (arXiv 2410.06424) instead of the straight-through copy.
            Defaults to False.
        stats_window (int): steps covered by :meth:`codebook_stats`.
            Defaults to 100.

    Example:
        >>> simvq = SimVQ(codebook_size=512, embed_dim=8)
        >>> out = simvq(torch.randn(2, 8, 4, 4))
        >>> out.indices.shape
        torch.Size([2, 1, 4, 4])
    """

    def __init__(self, codebook_size: int = 16384, embed_dim: int = 8, *,
                 beta: float = 0.25, beta_on_codebook: bool = False,
                 bias: bool = True, freeze_codebook: bool = True,
                 rotation_trick: bool = False,
                 stats_window: int = 100) -> None:
        super().__init__()
        check_sizes(self, codebook_size=codebook_size, embed_dim=embed_dim,
                    stats_window=stats_window)
        self.codebook_size = codebook_size
        self.embed_dim = self.in_channels = embed_dim
        self.beta = beta
        self.beta_on_codebook = beta_on_codebook
        self.rotation_trick = rotation_trick
        self.embedding = nn.Embedding(codebook_size, embed_dim)
        nn.init.normal_(self.embedding.weight, std=embed_dim ** -0.5)
        self.embedding.weight.requires_grad_(not freeze_codebook)
        self.embedding_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.usage = CodeUsage(codebook_size, stats_window)

    def codebook(self) -> Tensor:
        """The projected codes ``[K, D]``."""
        return self.embedding_proj(self.embedding.weight)

    def forward(self, z: Tensor) -> QuantizerOutput:
        b, _, h, w = z.shape
        flat = rearrange(z, 'b c h w -> (b h w) c')
        with torch.no_grad():
            indices = nearest_code(flat, self.codebook())
        # Project only the chosen rows: the gradient to W and b is the same
        # as through the full projected codebook, without a [K, D] buffer.
        z_q = self.embedding_proj(self.embedding(indices))
        losses = {}
        if self.training:
            losses = commitment_losses(flat, z_q, self.beta,
                                       self.beta_on_codebook)
            self.usage.update(global_code_counts(indices, self.codebook_size))
        z_q = pass_gradient(flat, z_q, self.rotation_trick)
        quantized = rearrange(z_q, '(b h w) c -> b c h w', b=b, h=h, w=w)
        indices = rearrange(indices, '(b h w) -> b 1 h w', b=b, h=h, w=w)
        return QuantizerOutput(quantized, indices, losses,
                               codebook_metrics(indices, self.codebook_size))

    def embed_indices(self, indices: Tensor) -> Tensor:
        codes = self.embedding_proj(self.embedding(indices[:, 0]))
        return rearrange(codes, 'b h w c -> b c h w')
