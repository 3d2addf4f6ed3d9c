"""Compare fqzoo's conversion of LlamaGen's VQ tokenizers (and, end to end,
a LlamaGen GPT sampling tokens that the tokenizer decodes) with the
released code.

Runs LlamaGen's ``VQModel`` (``tokenizer/tokenizer_image/vq_model.py``) and
c2i ``Transformer`` with its ``generate`` (``autoregressive/models/``) from
a local checkout (never imported by fqzoo itself) on synthetic weights in
the released layout (``tests/test_converters/llamagen_release.py``, loaded
with ``strict=True``), converts the same weights with
``fqzoo.converters`` and prints, for the same images: how many token
indices agree, the smallest gap between the nearest and second-nearest
code (how far from a tie the search was), and the largest difference of
the reconstructions and of the images decoded from the indices. The GPT
part samples greedily (top-k 1, CFG 2.0) with both and decodes the tokens
with both tokenizers. Exit status 1 when an index differs or a difference
exceeds ``--atol``.

``--paper-scale`` also compares VQ-16 and VQ-8 at their released size (72M
and 70M parameters, 16384 x 8 codebook) on two 256 px images.
``--record FILE`` writes the tiny case's inputs and released outputs (no
weights: the test helper rebuilds them from their seeds);
``tests/test_converters/llamagen_released.pt`` was made that way.

Example::

    python tools/dev/compare_llamagen_vq.py /tmp/LlamaGen --paper-scale \\
        --record tests/test_converters/llamagen_released.pt
"""
import argparse
import importlib
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, Tuple

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from fqzoo.apis import init_generator, init_tokenizer  # noqa: E402
from fqzoo.converters import write_converted  # noqa: E402


def load_helper():
    path = REPO / 'tests' / 'test_converters' / 'llamagen_release.py'
    spec = importlib.util.spec_from_file_location('llamagen_release', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def released_modules(root: Path):
    sys.path.insert(0, str(root))
    try:
        return (importlib.import_module('tokenizer.tokenizer_image.vq_model'),
                importlib.import_module('autoregressive.models.gpt'),
                importlib.import_module('autoregressive.models.generate'))
    finally:
        sys.path.remove(str(root))


def commit_of(root: Path) -> str:
    try:
        return subprocess.run(['git', '-C', str(root), 'rev-parse', 'HEAD'],
                              capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return 'unknown (not a git checkout)'


def released_vq(vq_model, arch: dict, state: dict):
    """LlamaGen's VQModel with the trunks of ``arch`` (its ModelArgs has no
    base width nor block count: the encoder and decoder are replaced)."""
    mult = list(arch['ch_mult'])
    model = vq_model.VQModel(vq_model.ModelArgs(
        codebook_size=arch['codebook_size'],
        codebook_embed_dim=arch['embed_dim'], encoder_ch_mult=mult,
        decoder_ch_mult=mult, z_channels=arch['z_channels']))
    model.encoder = vq_model.Encoder(
        ch=arch['ch'], ch_mult=mult, num_res_blocks=arch['num_res_blocks'],
        z_channels=arch['z_channels'])
    model.decoder = vq_model.Decoder(
        ch=arch['ch'], ch_mult=mult, num_res_blocks=arch['num_res_blocks'],
        z_channels=arch['z_channels'])
    model.load_state_dict(state, strict=True)
    return model.eval()


def code_gap(model, x: torch.Tensor) -> float:
    """Smallest gap between the nearest and second-nearest code distance
    over every position (in the released search's squared distances)."""
    z = model.quant_conv(model.encoder(x))
    flat = F.normalize(z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]), dim=-1)
    codes = F.normalize(model.quantize.embedding.weight, dim=-1)
    dist = torch.cdist(flat.double(), codes.double()) ** 2
    two = dist.topk(2, dim=1, largest=False).values
    return float((two[:, 1] - two[:, 0]).min())


def convert(state: dict, name: str, tmp: Path, **options):
    src, dst, cfg = tmp / f'{name}.pt', tmp / f'{name}.pth', \
        tmp / f'{name}.py'
    torch.save({'model': state}, src)
    write_converted(src, dst, cfg, **options)
    return cfg, dst


@torch.no_grad()
def compare_vq(vq_model, arch: dict, state: dict, x: torch.Tensor,
               tmp: Path, name: str) -> Tuple[dict, dict]:
    released = released_vq(vq_model, arch, state)
    quant, _, (_, _, flat) = released.encode(x)
    grid = quant.shape[-2:]
    indices = flat.reshape(x.shape[0], *grid)
    recon = released.decode(quant)
    decoded = released.decode_code(flat, shape=(x.shape[0], arch['embed_dim'],
                                                *grid))
    cfg, dst = convert(state, name, tmp)
    tok = init_tokenizer(cfg, dst)
    ours = tok.encode(x)[:, 0]
    result = dict(
        indices_equal=int((ours == indices).sum()),
        indices_total=indices.numel(), code_gap=code_gap(released, x),
        recon_max_diff=float((tok.reconstruct(x) - recon).abs().max()),
        decoded_max_diff=float((tok.decode(ours[:, None]) - decoded)
                               .abs().max()),
        recon_scale=float(recon.abs().max()))
    outputs = dict(images=x, indices=indices, reconstructions=recon,
                   decoded=decoded)
    return result, outputs


@torch.no_grad()
def compare_gpt(gpt, generate, helper, vq_tmp: Tuple[Path, Path],
                vq_released, tmp: Path) -> Tuple[dict, dict]:
    arch = helper.GPT
    state = helper.gpt_state()
    model = gpt.Transformer(gpt.ModelArgs(
        dim=arch['dim'], n_layer=arch['n_layer'], n_head=arch['n_head'],
        multiple_of=arch['multiple_of'], vocab_size=arch['vocab_size'],
        num_classes=arch['num_classes'], block_size=helper.GRID ** 2))
    model.load_state_dict(state, strict=True)
    model.eval()
    labels = torch.tensor([0, 3, arch['num_classes'] - 1])
    tokens = generate.generate(model, labels, helper.GRID ** 2,
                               cfg_scale=2.0, top_k=1, temperature=1.0)
    images = vq_released.decode_code(
        tokens, shape=(len(labels), helper.VQ['embed_dim'], helper.GRID,
                       helper.GRID))
    cfg, dst = convert(state, 'gpt', tmp, num_heads=arch['n_head'],
                       grid_size=helper.GRID)
    gen = init_generator(cfg, dst)
    ours = gen.generate(labels, cfg_scale=2.0, top_k=1)
    tok = init_tokenizer(*vq_tmp)
    grid = tokens.reshape(len(labels), 1, helper.GRID, helper.GRID)
    result = dict(tokens_equal=int((ours == grid).sum()),
                  tokens_total=grid.numel(),
                  images_max_diff=float((tok.decode(ours) - images)
                                        .abs().max()))
    return result, dict(labels=labels, tokens=grid, token_images=images)


def paper_scale(vq_model, tmp: Path) -> Dict[str, dict]:
    helper = load_helper()
    rng = torch.Generator().manual_seed(3)
    coarse = torch.rand(2, 3, 8, 8, generator=rng) * 2 - 1
    x = F.interpolate(coarse, size=256, mode='bicubic',
                      align_corners=False).clamp(-1, 1)
    out = {}
    for name, mult in (('vq_ds16', (1, 1, 2, 2, 4)), ('vq_ds8', (1, 2, 2, 4))):
        arch = dict(ch=128, ch_mult=mult, num_res_blocks=2, z_channels=256,
                    codebook_size=16384, embed_dim=8)
        state = helper.random_state(helper.vq_shapes(**arch), seed=0)
        out[name] = compare_vq(vq_model, arch, state, x, tmp, name)[0]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('llamagen', type=Path,
                        help='checkout of FoundationVision/LlamaGen')
    parser.add_argument('--paper-scale', action='store_true')
    parser.add_argument('--record', type=Path, default=None)
    parser.add_argument('--atol', type=float, default=1e-4)
    args = parser.parse_args()
    torch.manual_seed(0)
    helper = load_helper()
    vq_model, gpt, generate = released_modules(args.llamagen)
    print(f'LlamaGen at {commit_of(args.llamagen)}, torch {torch.__version__}')
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        vq = helper.VQ
        state = helper.vq_state()
        result, outputs = compare_vq(vq_model, vq, state, helper.images(),
                                     tmp, 'vq_tiny')
        print(f'tiny VQ {vq}: {result}')
        released = released_vq(vq_model, vq, state)
        gpt_result, gpt_outputs = compare_gpt(
            gpt, generate, helper, (tmp / 'vq_tiny.py', tmp / 'vq_tiny.pth'),
            released, tmp)
        print(f'tiny GPT {helper.GPT} + tiny VQ, greedy, cfg 2.0: '
              f'{gpt_result}')
        results = {'tiny': result}
        if args.paper_scale:
            for name, res in paper_scale(vq_model, tmp).items():
                print(f'{name} (paper scale, 2 x 256 px): {res}')
                results[name] = res
    for name, res in results.items():
        if res['indices_equal'] != res['indices_total'] or max(
                res['recon_max_diff'], res['decoded_max_diff']) > args.atol:
            print(f'MISMATCH: {name}')
            failed = True
    if gpt_result['tokens_equal'] != gpt_result['tokens_total'] or \
            gpt_result['images_max_diff'] > args.atol:
        print('MISMATCH: GPT + VQ')
        failed = True
    if args.record:
        record = dict(outputs, **gpt_outputs, code_gap=result['code_gap'],
                      llamagen_commit=commit_of(args.llamagen),
                      torch=str(torch.__version__))
        torch.save(record, args.record)
        print(f'Recorded {args.record}')
    return int(failed)


if __name__ == '__main__':
    sys.exit(main())
