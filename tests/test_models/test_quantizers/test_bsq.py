import math

import torch

from fqzoo.models.quantizers import BSQ
from fqzoo.models.quantizers.bsq import factorized_entropy_loss
from fqzoo.models.quantizers.lfq import sign_codebook
from fqzoo.models.quantizers.search import entropy_loss


def test_codes_lie_on_the_unit_sphere():
    out = BSQ(embed_dim=8).eval()(torch.randn(2, 8, 3, 3))
    torch.testing.assert_close(out.quantized.norm(dim=1),
                               torch.ones(2, 3, 3))


def test_factorized_sample_entropy_is_exact():
    torch.manual_seed(0)
    u = torch.nn.functional.normalize(torch.randn(64, 5, dtype=torch.float64),
                                      dim=-1)
    scale = 1 / math.sqrt(5)
    codebook = sign_codebook(5, scale).double()
    # codebook_weight 0 leaves the per-sample entropy, exact in both.
    torch.testing.assert_close(
        factorized_entropy_loss(u, scale, 0.5, codebook_weight=0.0),
        entropy_loss(u, codebook, 0.5, l2_norm=True, codebook_weight=0.0))
