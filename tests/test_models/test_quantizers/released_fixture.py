"""The released quantizers' outputs on small fixed inputs, recorded once by
``tools/dev/compare_released.py --record`` from youngsheen/SimVQ,
TencentARC/SEED-Voken and lucidrains/vector-quantize-pytorch (float64), and
the same outputs and gradients computed from fqzoo's modules."""
from pathlib import Path
from typing import Callable, Dict

import torch

FIXTURE = Path(__file__).with_name('released_quantizers.pt')


def released_case(name: str) -> dict:
    return torch.load(FIXTURE, weights_only=True)[name]


def outputs(module: torch.nn.Module, forward: Callable, z: torch.Tensor,
            upstream: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Values and the gradients of ``<quantized, upstream>`` and of each
    loss w.r.t. ``z`` and every trained parameter, keyed as recorded."""
    z = z.clone().requires_grad_()
    quantized, indices, losses = forward(module, z)
    wrt = {'z': z, **{k: p for k, p in module.named_parameters()
                      if p.requires_grad}}
    out = {'quantized': quantized.detach(), 'indices': indices}
    out.update({f'loss/{k}': v.detach() for k, v in losses.items()})
    scalars = {'quantized': (quantized * upstream).sum(), **losses}
    for name, scalar in scalars.items():
        grads = torch.autograd.grad(scalar, list(wrt.values()),
                                    retain_graph=True, allow_unused=True,
                                    materialize_grads=True)
        out.update({f'grad/{name}/{key}': g for key, g in zip(wrt, grads)})
    return out


def assert_matches_released(released: dict, ours: dict,
                            atol: float = 1e-12) -> None:
    assert set(released) <= set(ours), set(released) - set(ours)
    for key, want in released.items():
        if want.dtype == torch.long:
            assert torch.equal(ours[key], want), key
        else:
            torch.testing.assert_close(ours[key], want, rtol=0, atol=atol,
                                       msg=lambda m, k=key: f'{k}: {m}')
