"""Check fqzoo's released sampling protocol against the released samplers.

Runs LlamaGen's ``generate`` (FoundationVision/LlamaGen
``autoregressive/models/generate.py``) and FAR's ``generate_fq``
(showlab/FQGAN ``autoregressive/models/generate_dual.py``) on tiny models
with random weights, and fqzoo's ``generate(..., protocol='released')`` on
the same weights converted by fqzoo's converter, for every case of
``tests/test_models/test_generators/released_cases.py`` (temperature,
top-k, top-p, guidance on and off, LlamaGen's ``cfg_interval``, FAR's
per-sub-token values). Each seed is one stream as the release scripts
draw it: ``torch.manual_seed(seed)``, then for each of two batches
``torch.randint`` labels and ``generate``; fqzoo draws both from one
``torch.Generator`` seeded alike. Labels and tokens must be equal; the
count of seeds where fqzoo's own protocol gives other tokens is printed
too. Exit status 1 on any mismatch.

The released code is only read from the given folders (a checkout or
``git archive`` of each repository), never part of fqzoo. ``--record``
writes the released tokens into the fixture the tests compare with.

Example:
    python tools/dev/check_released_sampling.py /tmp/rel/llamagen \\
        /tmp/rel/fqgan --record \\
        tests/test_models/test_generators/fixtures/released_sampling.json
"""
import argparse
import importlib
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import torch

REPO = Path(__file__).resolve().parents[2]
CASES_FILE = (REPO / 'tests' / 'test_models' / 'test_generators'
              / 'released_cases.py')


def load_cases():
    spec = importlib.util.spec_from_file_location('released_cases',
                                                  CASES_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def import_released(root: Path, modules: List[str]) -> list:
    """Import ``modules`` from the released checkout ``root`` (both
    releases name their packages ``autoregressive`` and ``utils``: the
    previous ones are dropped first)."""
    for name in list(sys.modules):
        if name.split('.')[0] in ('autoregressive', 'utils'):
            del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        return [importlib.import_module(m) for m in modules]
    finally:
        sys.path.remove(str(root))


def commit_of(root: Path) -> str:
    try:
        return subprocess.run(['git', '-C', str(root), 'rev-parse', 'HEAD'],
                              capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return 'unknown (not a git checkout)'


def convert(state: Dict[str, torch.Tensor], family: str, arch: dict,
            grid: int, tmp: Path):
    """The fqzoo generator of a released state dict, through fqzoo's
    converter (``fqzoo.converters`` where it lives, else the older
    ``fqzoo.models.generators.released``)."""
    from fqzoo.apis import init_generator
    src, dst, cfg = tmp / f'{family}.pt', tmp / f'{family}.pth', \
        tmp / f'{family}.py'
    torch.save({'model': state}, src)
    try:
        from fqzoo.converters import write_converted as write
    except ImportError:
        from fqzoo.models.generators.released import write_converted as write
    write(src, dst, cfg, family, num_heads=arch['H'], grid_size=grid)
    return init_generator(str(cfg), str(dst))


def released_runner(name: str, arch: dict, state: dict, cases, root: Path,
                    device: torch.device
                    ) -> Callable[[torch.Tensor, dict], torch.Tensor]:
    """A function ``(labels, options) -> tokens [B, G, h, w]`` running the
    released sampler on the released model with ``state``."""
    grid = cases.GRID
    if arch['family'] == 'llamagen':
        gpt, generate = import_released(root, [
            'autoregressive.models.gpt', 'autoregressive.models.generate'])
        model = gpt.Transformer(gpt.ModelArgs(
            dim=arch['D'], n_layer=arch['layers'], n_head=arch['H'],
            multiple_of=16, vocab_size=arch['V'],
            num_classes=arch['classes'], block_size=grid * grid))
    else:
        far, generate = import_released(root, [
            'autoregressive.models.far_dual',
            'autoregressive.models.generate_dual'])
        model = far.Transformer(far.ModelArgs(
            dim=arch['D'], n_layer=arch['layers'],
            ar_n_layer=arch['head_layers'], n_head=arch['H'],
            multiple_of=16, vocab_size=arch['V'],
            num_classes=arch['classes'], block_size=grid * grid))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if 'freqs_cis' not in k]:
        raise KeyError(f'{name}: the synthetic state dict does not fit the '
                       f'released model (missing {missing}, unexpected '
                       f'{unexpected})')
    model.to(device).eval()
    steps = grid * grid

    def run(labels: torch.Tensor, options: dict) -> torch.Tensor:
        opts = dict(cfg_scale=1.0, temperature=1.0, top_k=0, top_p=1.0,
                    cfg_interval=-1)
        opts.update(options)
        if arch['family'] == 'llamagen':
            seq = generate.generate(model, labels, steps, sample_logits=True,
                                    **opts)
            return seq.long().reshape(len(labels), 1, grid, grid)
        per = {k: (v if isinstance(v, list) else [v] * arch['G'])
               for k, v in opts.items() if k != 'cfg_interval'}
        pre, post = generate.generate_fq(model, labels, steps,
                                         cfg_interval=opts['cfg_interval'],
                                         sample_logits=True, **per)
        return torch.stack([pre, post], 1).long().reshape(
            len(labels), 2, grid, grid)
    return run


def stream_released(run, num_classes: int, seed: int, options: dict,
                    cases, device: torch.device) -> Tuple[list, list]:
    """Labels and tokens of one seed as the release scripts draw them."""
    torch.manual_seed(seed)
    labels, tokens = [], []
    for _ in range(cases.BATCHES):
        batch = torch.randint(0, num_classes, (cases.BATCH, ), device=device)
        labels.append(batch)
        tokens.append(run(batch, options))
    return labels, tokens


def stream_fqzoo(gen, seed: int, options: dict, cases, protocol: str,
                 use_cache: bool = True) -> Tuple[list, list]:
    """The same stream drawn by fqzoo (its label draw, then generate)."""
    from fqzoo.generation.released import draw_labels
    device = next(gen.parameters()).device
    rng = torch.Generator(device=device).manual_seed(seed)
    labels, tokens = [], []
    for _ in range(cases.BATCHES):
        batch = draw_labels(rng, cases.BATCH, gen.num_classes)
        labels.append(batch)
        tokens.append(gen.generate(batch, rng=rng, protocol=protocol,
                                   use_cache=use_cache, **options))
    return labels, tokens


def equal(a: list, b: list) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('llamagen', type=Path,
                        help='LlamaGen checkout (FoundationVision/LlamaGen)')
    parser.add_argument('fqgan', type=Path,
                        help='FQGAN checkout (showlab/FQGAN)')
    parser.add_argument('--record', type=Path,
                        help='write the released tokens of the fixture\'s '
                        'seeds to this file')
    parser.add_argument('--num-seeds', type=int, default=10,
                        help='seeds 0 ... N-1 are checked (default: 10)')
    parser.add_argument('--device', default='cpu',
                        help='run both samplers here (default: cpu; the '
                        'release scripts sample on CUDA)')
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(1)
    cases = load_cases()
    roots = dict(llamagen=args.llamagen, far_dual=args.fqgan)
    fixture = dict(
        note='Tokens of the released samplers on released_cases.py\'s '
             'synthetic checkpoints, written by '
             'tools/dev/check_released_sampling.py --record',
        releases={'FoundationVision/LlamaGen': commit_of(args.llamagen),
                  'showlab/FQGAN': commit_of(args.fqgan)},
        torch=torch.__version__, streams={})
    failures, rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name, arch in cases.ARCHS.items():
            state = cases.released_state(name)
            gen = convert(state, arch['family'], arch, cases.GRID, Path(tmp))
            gen.to(device)
            ours = gen.state_dict()
            mapped = cases.fqzoo_state(state)
            if set(ours) != set(mapped) or not all(
                    torch.equal(ours[k], v) for k, v in mapped.items()):
                failures.append(f'{name}: released_cases.fqzoo_state '
                                'differs from the converter')
            run = released_runner(name, arch, state, cases, roots[name],
                                  device)
            fixture['streams'][name] = {}
            for case in cases.cases_for(name):
                options = cases.options_for(name, case)
                same = differs = 0
                fixture['streams'][name][case] = {}
                for seed in range(args.num_seeds):
                    ref_labels, ref_tokens = stream_released(
                        run, arch['classes'], seed, options, cases, device)
                    labels, tokens = stream_fqzoo(gen, seed, options, cases,
                                                  'released')
                    _, uncached = stream_fqzoo(gen, seed, options, cases,
                                               'released', use_cache=False)
                    ok = (equal(labels, ref_labels)
                          and equal(tokens, ref_tokens)
                          and equal(uncached, ref_tokens))
                    same += ok
                    if not ok:
                        failures.append(f'{name} {case} seed {seed}')
                    _, own = stream_fqzoo(gen, seed, options, cases, 'fqzoo')
                    differs += not equal(own, ref_tokens)
                    if seed in cases.SEEDS:
                        fixture['streams'][name][case][str(seed)] = dict(
                            labels=[b.tolist() for b in ref_labels],
                            tokens=[b.tolist() for b in ref_tokens])
                rows.append((name, case, options, same, differs))
    print(f'{"model":9} {"case":22} {"released equal":>14} '
          f'{"fqzoo differs":>13}  options')
    for name, case, options, same, differs in rows:
        print(f'{name:9} {case:22} {same:>8}/{args.num_seeds:<5} '
              f'{differs:>7}/{args.num_seeds:<5}  {options}')
    if failures:
        print('MISMATCH: ' + '; '.join(failures))
        return 1
    if args.record:
        if args.device != 'cpu' or args.num_seeds < max(cases.SEEDS) + 1:
            raise SystemExit('--record needs --device cpu and every seed of '
                             'released_cases.SEEDS')
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(json.dumps(fixture, separators=(',', ':'))
                               + '\n')
        print(f'wrote {args.record}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
