"""Compare fqzoo's SimVQ, IBQ and rotation trick with the released code.

Runs the released quantizer modules from local checkouts (never imported by
fqzoo itself) and fqzoo's on the same inputs and weights, and prints the
largest difference of the indices, quantized outputs, losses and the
gradients of each w.r.t. the encoder output and every learned parameter.
Everything runs in float64 on a small fixed input, so agreement is to
~1e-12. Each case runs only when its checkout is given:

- ``--simvq``: youngsheen/SimVQ (``taming/modules/vqvae/quantize.py``,
  ``SimVQ`` with ``legacy=False`` and ``legacy=True``);
- ``--seed-voken``: TencentARC/SEED-Voken
  (``src/IBQ/modules/vqvae/quantize.py``, ``IndexPropagationQuantize`` with
  its entropy loss), against fqzoo's blocked IBQ at a block size that
  splits tokens and codes;
- ``--vqtorch``: lucidrains/vector-quantize-pytorch (``rotate_to``, its
  ``SimVQ`` with ``rotation_trick=True`` and ``VectorQuantize`` with
  ``rotation_trick=True``); needs its dependency ``einx`` importable (e.g.
  ``pip install --target /tmp/site einx`` and ``--extra-path /tmp/site``).

``--record FILE`` writes the inputs, weights and released outputs to a
``.pt`` file; ``tests/test_models/test_quantizers/released_quantizers.pt``
was made that way and pins the equality in the tests without the released
code present. Exit status 1 when a difference exceeds ``--atol``.

Example::

    python tools/dev/compare_released.py --simvq /tmp/SimVQ \\
        --seed-voken /tmp/SEED-Voken --vqtorch /tmp/vector-quantize-pytorch \\
        --extra-path /tmp/site
"""
import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from fqzoo.models.quantizers import (  # noqa: E402
    IndexBackpropQuantizer,
    SimVQ,
    VectorQuantizer,
    rotate_to,
)

Outputs = Dict[str, torch.Tensor]
K, D, SHAPE = 16, 4, (2, 4, 3, 3)


def load_file(path: Path, name: str):
    """Import one released file as a standalone module."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def inputs(seed: int, scale: float = 1.0) -> Tuple[torch.Tensor, ...]:
    rng = torch.Generator().manual_seed(seed)
    z = scale * torch.randn(SHAPE, generator=rng, dtype=torch.float64)
    upstream = torch.randn(SHAPE, generator=rng, dtype=torch.float64)
    return z, upstream


def gradients(scalars: Dict[str, torch.Tensor], z: torch.Tensor,
              params: Dict[str, torch.Tensor]) -> Outputs:
    """``grad/{scalar}/{wrt}`` for each scalar w.r.t. ``z`` and params."""
    wrt = {'z': z, **params}
    out = {}
    for name, scalar in scalars.items():
        grads = torch.autograd.grad(scalar, list(wrt.values()),
                                    retain_graph=True, allow_unused=True,
                                    materialize_grads=True)
        out.update({f'grad/{name}/{key}': g
                    for key, g in zip(wrt, grads)})
    return out


def run(model: torch.nn.Module, forward: Callable, z: torch.Tensor,
        upstream: torch.Tensor) -> Outputs:
    """Run ``forward(model, z) -> (quantized, indices, losses)``; return the
    values and the gradients of ``<quantized, upstream>`` and each loss."""
    z = z.clone().requires_grad_()
    quantized, indices, losses = forward(model, z)
    params = {k: p for k, p in model.named_parameters() if p.requires_grad}
    scalars = {'quantized': (quantized * upstream).sum(), **losses}
    out = {'quantized': quantized.detach(), 'indices': indices}
    out.update({f'loss/{k}': v.detach() for k, v in losses.items()})
    out.update(gradients(scalars, z, params))
    return out


# ------------------------------------------------------------------ SimVQ
def released_simvq(module, z):
    (quantized, _, indices), breakdown = module(z)
    return quantized, indices.reshape(-1), {'loss': breakdown.commitment}


def fqzoo_simvq(module, z):
    out = module(z)
    losses = out.losses
    return out.quantized, out.indices.reshape(-1), {
        'loss': losses['loss_commit'] + losses['loss_codebook']}


def simvq_cases(root: Path) -> List[Tuple[str, Outputs, Outputs, dict]]:
    released = load_file(root / 'taming/modules/vqvae/quantize.py',
                         'released_simvq_quantize')
    cases = []
    for legacy in (False, True):
        torch.manual_seed(0)
        theirs = released.SimVQ(K, D, beta=0.25, legacy=legacy).double()
        ours = SimVQ(K, D, beta=0.25, beta_on_codebook=legacy).double()
        ours.load_state_dict(theirs.state_dict(), strict=False)
        z, upstream = inputs(1)
        weights = {k: v.clone() for k, v in theirs.state_dict().items()}
        cases.append((f'simvq_legacy_{legacy}',
                      run(theirs.train(), released_simvq, z, upstream),
                      run(ours.train(), fqzoo_simvq, z, upstream),
                      dict(z=z, upstream=upstream, weights=weights)))
    return cases


# -------------------------------------------------------------------- IBQ
def released_ibq(module, z):
    quantized, (quant, sample, avg, entropy), (_, _, indices) = module(z)
    return quantized, indices.reshape(-1), {'quant': quant,
                                            'entropy': entropy}


def fqzoo_ibq(module, z):
    out = module(z)
    losses = out.losses
    return out.quantized, out.indices.reshape(-1), {
        'quant': (losses['loss_ibq'] + losses['loss_commit']
                  + losses['loss_codebook']),
        'entropy': losses['loss_entropy'] / module.entropy_weight}


def ibq_cases(root: Path) -> List[Tuple[str, Outputs, Outputs, dict]]:
    released = load_file(root / 'src/IBQ/modules/vqvae/quantize.py',
                         'released_ibq_quantize')
    torch.manual_seed(0)
    theirs = released.IndexPropagationQuantize(
        K, D, beta=0.25, use_entropy_loss=True,
        entropy_temperature=0.5).double()
    # block_size 12: blocks of 12 tokens x 1 code, several of each
    ours = IndexBackpropQuantizer(K, D, entropy_weight=0.05,
                                  entropy_temperature=0.5,
                                  block_size=12).double()
    ours.load_state_dict(theirs.state_dict(), strict=False)
    z, upstream = inputs(2, scale=0.5)
    weights = {k: v.clone() for k, v in theirs.state_dict().items()}
    return [('ibq', run(theirs.train(), released_ibq, z, upstream),
             run(ours.train(), fqzoo_ibq, z, upstream),
             dict(z=z, upstream=upstream, weights=weights))]


# ---------------------------------------------------------- rotation trick
def vqtorch_cases(root: Path) -> List[Tuple[str, Outputs, Outputs, dict]]:
    sys.path.insert(0, str(root))
    from vector_quantize_pytorch import SimVQ as TheirSimVQ
    from vector_quantize_pytorch import VectorQuantize
    from vector_quantize_pytorch.vector_quantize_pytorch import (
        rotate_to as their_rotate_to,
    )
    cases = []

    # the function alone, on rows of z and of arbitrary targets
    z, upstream = inputs(3)
    rng = torch.Generator().manual_seed(4)
    target = torch.randn(SHAPE, generator=rng, dtype=torch.float64)

    def rows(t):
        return t.movedim(1, -1).reshape(-1, D)

    def fn(rotate):
        def forward(_, x):
            return rotate(rows(x), rows(target)), torch.zeros(0), {}
        return forward

    cases.append(('rotate_to', run(torch.nn.Identity(), fn(their_rotate_to),
                                   z, rows(upstream)),
                  run(torch.nn.Identity(), fn(rotate_to), z, rows(upstream)),
                  dict(z=z, upstream=upstream,
                       weights={'target': target})))

    # vector-quantize-pytorch's SimVQ: rotation trick, no bias
    torch.manual_seed(0)
    theirs = TheirSimVQ(dim=D, codebook_size=K, channel_first=True,
                        rotation_trick=True).double()
    ours = SimVQ(K, D, bias=False, rotation_trick=True).double()
    ours.load_state_dict({
        'embedding.weight': theirs.frozen_codebook,
        'embedding_proj.weight': theirs.code_transform.weight},
        strict=False)
    z, upstream = inputs(5)

    def their_simvq(module, x):
        quantized, indices, loss = module(x)
        return quantized, indices.reshape(-1), {'loss': loss}

    their_out = run(theirs.train(), their_simvq, z, upstream)
    rename(their_out, 'code_transform.weight', 'embedding_proj.weight',
           (D, D))
    cases.append(('vqtorch_simvq_rotation', their_out,
                  run(ours.train(), fqzoo_simvq, z, upstream),
                  dict(z=z, upstream=upstream, weights={
                      'frozen_codebook': theirs.frozen_codebook.clone(),
                      'code_transform.weight':
                          theirs.code_transform.weight.detach().clone()})))

    # VectorQuantize with a learnable codebook, no EMA: commitment weight 1
    torch.manual_seed(0)
    theirs = VectorQuantize(dim=D, codebook_size=K, rotation_trick=True,
                            ema_update=False, learnable_codebook=True,
                            accept_image_fmap=True).double()
    codes = theirs._codebook.embed.detach()[0].clone()
    ours = VectorQuantizer(K, D, l2_norm=False, beta=1.0,
                           rotation_trick=True).double()
    ours.load_state_dict({'embedding.weight': codes}, strict=False)
    z, upstream = inputs(6)

    def their_vq(module, x):
        quantized, indices, loss = module(x)
        return quantized, indices.reshape(-1), {'commit': loss}

    def our_vq(module, x):
        out = module(x)
        # vqtorch's one mse(q, z) reaches z and the codes at weight 1
        losses = out.losses
        return out.quantized, out.indices.reshape(-1), {
            'commit': losses['loss_commit'] + losses['loss_codebook']
            - losses['loss_codebook'].detach()}

    their_out = run(theirs.train(), their_vq, z, upstream)
    our_out = run(ours.train(), our_vq, z, upstream)
    rename(their_out, '_codebook.embed', 'embedding.weight', (K, D))
    cases.append(('vqtorch_vq_rotation', their_out, our_out,
                  dict(z=z, upstream=upstream, weights={'codebook': codes},
                       float32_inside=True)))
    return cases


def rename(out: Outputs, theirs: str, ours: str,
           shape: Tuple[int, ...]) -> None:
    """Call the gradient w.r.t. parameter ``theirs``/``ours`` ``ours``."""
    for key in [k for k in out if k.endswith('/' + theirs)]:
        out[key[:-len(theirs)] + ours] = out.pop(key).reshape(shape)


def compare(name: str, theirs: Outputs, ours: Outputs, atol: float) -> bool:
    ok = True
    for key in sorted(theirs):
        if key not in ours:
            print(f'{name:24s} {key:40s} MISSING in fqzoo')
            ok = False
            continue
        a, b = theirs[key], ours[key]
        if a.dtype == torch.long:
            diff = float((a != b).sum())
        else:
            diff = float((a - b.to(a.dtype)).abs().max()) if a.numel() else 0.
        ok &= diff <= atol
        print(f'{name:24s} {key:40s} max |diff| {diff:.3g}')
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--simvq', type=Path, help='youngsheen/SimVQ checkout')
    parser.add_argument('--seed-voken', type=Path,
                        help='TencentARC/SEED-Voken checkout')
    parser.add_argument('--vqtorch', type=Path,
                        help='lucidrains/vector-quantize-pytorch checkout')
    parser.add_argument('--extra-path', action='append', default=[],
                        help='folder with the checkouts\' dependencies')
    parser.add_argument('--record', type=Path,
                        help='write inputs, weights and released outputs')
    parser.add_argument('--atol', type=float, default=1e-10)
    args = parser.parse_args()
    sys.path[:0] = args.extra_path
    cases = []
    if args.simvq:
        cases += simvq_cases(args.simvq)
    if args.seed_voken:
        cases += ibq_cases(args.seed_voken)
    if args.vqtorch:
        cases += vqtorch_cases(args.vqtorch)
    if not cases:
        parser.error('give at least one checkout')
    # vector-quantize-pytorch's codebook computes in float32 whatever the
    # input's dtype: its cases agree to float32 rounding
    ok = all([compare(name, theirs, ours,
                      1e-6 if setup.get('float32_inside') else args.atol)
              for name, theirs, ours, setup in cases])
    if args.record:
        torch.save({name: dict(setup, released=theirs)
                    for name, theirs, _, setup in cases}, args.record)
        print(f'recorded {len(cases)} cases in {args.record}')
    print('all equal' if ok else 'DIFFERENCES above --atol')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
