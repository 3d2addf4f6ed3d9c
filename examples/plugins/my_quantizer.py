"""A quantizer registered from a user's own file, outside fqzoo.

Uniform scalar quantization: each of ``embed_dim`` channels is squashed into
(-1, 1) and rounded to one of ``levels`` values; a token's index is the
mixed-radix number of its per-channel levels (so the codebook is implicit,
``levels ** embed_dim`` codes). Config use::

    custom_imports = dict(imports=['my_quantizer'], allow_failed_imports=False)
    model = dict(quantizer=dict(_delete_=True, type='UniformScalarQuantizer',
                                embed_dim=4, levels=5))
"""
import torch
from torch import Tensor

from fqzoo.errors import InputError
from fqzoo.models.quantizers import (
    BaseQuantizer,
    QuantizerOutput,
    check_sizes,
    codebook_metrics,
)
from fqzoo.registry import QUANTIZERS


@QUANTIZERS.register_module()
class UniformScalarQuantizer(BaseQuantizer):
    """Round each channel of ``tanh(z)`` to ``levels`` values in [-1, 1]."""

    def __init__(self, embed_dim: int = 4, levels: int = 5) -> None:
        super().__init__()
        # a bad size is refused here, by name, not deep inside a layer
        check_sizes(self, embed_dim=embed_dim, levels=levels)
        if levels < 2:
            raise InputError(f'UniformScalarQuantizer: levels must be at '
                             f'least 2, got {levels}')
        self.embed_dim = self.in_channels = embed_dim
        self.levels = levels
        self.codebook_size = levels**embed_dim
        self.register_buffer('radix', levels**torch.arange(embed_dim),
                             persistent=False)

    def forward(self, z: Tensor) -> QuantizerOutput:
        bounded = torch.tanh(z)
        steps = torch.round((bounded + 1) / 2 * (self.levels - 1))
        quantized = steps / (self.levels - 1) * 2 - 1
        quantized = bounded + (quantized - bounded).detach()
        indices = (steps.long() * self.radix.view(1, -1, 1, 1)).sum(1, keepdim=True)
        return QuantizerOutput(quantized, indices, {},
                               codebook_metrics(indices, self.codebook_size))

    def embed_indices(self, indices: Tensor) -> Tensor:
        steps = indices // self.radix.view(1, -1, 1, 1) % self.levels
        return steps.float() / (self.levels - 1) * 2 - 1
