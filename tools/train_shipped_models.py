"""Train, export and measure the small models that ship with fqzoo.

The recipe of ``fqzoo/zoo_assets/`` (the models of ``configs/shipped/``,
registered in the model index). Run the stages one at a time, in order;
each skips what is already done::

    OMP_NUM_THREADS=1 nice -n 5 python tools/train_shipped_models.py train
    python tools/train_shipped_models.py export
    python tools/train_shipped_models.py measure

``train [NAME ...]`` trains the tokenizers, extracts the generators' codes
and trains the generators (``tools/train.py`` on ``configs/shipped/train/``,
work dirs under ``work_dirs/shipped/``); ``export`` publishes each model
with ``tools/publish_model.py --dtype float16`` (half-precision
safetensors with its token layout in the header);
``measure`` scores the exported weights in full and in half precision and
writes the model cards (``fqzoo/zoo_assets/<name>/README.md``) and
``fqzoo/zoo_assets/metrics.json``.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fqzoo.apis import init_generator, init_tokenizer  # noqa: E402
from fqzoo.errors import exit_on_input_error  # noqa: E402
from fqzoo.utils.checkpoint import load_model_weights  # noqa: E402
from fqzoo.utils.files import file_sha256  # noqa: E402

WORK = Path('work_dirs/shipped')
ASSETS = Path('fqzoo/zoo_assets')
TRAIN_COMMAND = ('OMP_NUM_THREADS=1 nice -n 5 python '
                 'tools/train_shipped_models.py train {name}')
MEASURE_COMMAND = 'python tools/train_shipped_models.py measure {name}'
# Images whose codes the generators train on (1000 iterations at batch 32
# draw 32000 samples: 1.6 passes over them) and are scored on (held-out
# NLL); the tokenizers are scored on the same test images. Encoding runs at
# about 90 images/s on one loaded core.
CODE_TRAIN_IMAGES = 20000
TEST_IMAGES = 2000
TRAINING_ONLY = ('regularizers.', 'discriminator.', 'perceptual_loss.')

MODELS: Dict[str, dict] = {
    'fqzoo-fmnist-fq2': dict(
        kind='tokenizer', stem='fmnist_fq2', iters=1000,
        what='FQ-2 tokenizer for Fashion-MNIST: 32x32 images to 8x8 tokens, '
        'each a pair of codes from two 256-entry sub-codebooks (the FAR '
        'tokenizer of docs/generation.md: EfficientNet teacher on branch 1, '
        'disentanglement 0.1)',
        schedule='1000 iterations at batch 16 (docs/generation.md: 1500)'),
    'fqzoo-fmnist-vq': dict(
        kind='tokenizer', stem='fmnist_vq', iters=1000,
        what='VQ tokenizer for Fashion-MNIST: 32x32 images to 8x8 tokens '
        'of one 512-entry codebook (the AR baseline\'s tokenizer of '
        'docs/generation.md, the same trunk as fqzoo-fmnist-fq2)',
        schedule='1000 iterations at batch 16 (docs/generation.md: 1500)'),
    'fqzoo-fmnist-far': dict(
        kind='generator', stem='fmnist_far', iters=1000,
        tokenizer='fqzoo-fmnist-fq2', codes='fq2',
        what='FAR (factorized autoregressive head) class-conditional '
        'generator of Fashion-MNIST on the tokens of fqzoo-fmnist-fq2: '
        'width 128, 4 layers, a one-block head predicting the two '
        'sub-tokens of a position one after the other',
        schedule=f'1000 iterations at batch 32 on the codes of the first '
        f'{CODE_TRAIN_IMAGES} training images (docs/generation.md: 2000 on '
        'all 60000)'),
    'fqzoo-fmnist-ar': dict(
        kind='generator', stem='fmnist_ar', iters=1000,
        tokenizer='fqzoo-fmnist-vq', codes='vq',
        what='AR baseline (LlamaGen-style, one linear head) class-'
        'conditional generator of Fashion-MNIST on the tokens of '
        'fqzoo-fmnist-vq: width 128, 5 layers',
        schedule=f'1000 iterations at batch 32 on the codes of the first '
        f'{CODE_TRAIN_IMAGES} training images (docs/generation.md: 2000 on '
        'all 60000)'),
    'fqzoo-photos-fq2': dict(
        kind='tokenizer', stem='photos_fq2', iters=1000,
        what='the `make quickstart` FQ-2 tokenizer: photos to one token per '
        '4x4 pixels, each a pair of codes from two 512-entry sub-codebooks '
        '(EfficientNet teacher on branch 1), trained on 32x32 patches of the '
        'bundled photos; its trunk encodes whole photos too',
        schedule='1000 iterations at batch 16 (`make quickstart`: 2500)'),
}
TRAIN_ORDER = ['fqzoo-fmnist-fq2', 'fqzoo-fmnist-vq', 'codes',
               'fqzoo-fmnist-far', 'fqzoo-fmnist-ar', 'fqzoo-photos-fq2']


def config_of(name: str) -> Path:
    """The inference config of a shipped model."""
    return Path('configs/shipped') / f'{MODELS[name]["stem"]}.py'


def train_config_of(name: str) -> Path:
    return Path('configs/shipped/train') / f'{MODELS[name]["stem"]}.py'


def checkpoint_of(name: str) -> Path:
    spec = MODELS[name]
    return WORK / spec['stem'] / f'iter_{spec["iters"]}.pth'


def weights_of(name: str) -> Path:
    """The published file, ``fqzoo/zoo_assets/<name>/<name>-<sha8>.
    safetensors``."""
    found = sorted((ASSETS / name).glob(f'{name}-*.safetensors'))
    if len(found) != 1:
        raise FileNotFoundError(f'expected one {name}-*.safetensors in '
                                f'{ASSETS / name}, found {found}: run '
                                f'`export {name}`')
    return found[0]


def codes_dir(codes: str, split: str) -> Path:
    return WORK / 'codes' / codes / split


# ----------------------------------------------------------------- train
def train_model(name: str) -> None:
    """``tools/train.py`` on the model's training config, unless its final
    checkpoint exists."""
    if checkpoint_of(name).is_file():
        print(f'{name}: {checkpoint_of(name)} exists, skipped')
        return
    cmd = [sys.executable, 'tools/train.py', str(train_config_of(name)),
           '--work-dir', str(WORK / MODELS[name]['stem'])]
    print('+', ' '.join(cmd), flush=True)
    start = time.time()
    subprocess.run(cmd, check=True)
    print(f'{name}: trained in {(time.time() - start) / 60:.1f} min')


def extract(tokenizer_name: str, codes: str) -> None:
    """Codes of the first :data:`CODE_TRAIN_IMAGES` training and
    :data:`TEST_IMAGES` test images, with the shipped tokenizer's training
    checkpoint."""
    from torch.utils.data import Subset

    from fqzoo.apis.codes import build_split_dataset, extract_codes
    from fqzoo.utils.config import load_config
    cfg = load_config(str(config_of(tokenizer_name)))
    ckpt = checkpoint_of(tokenizer_name)
    tokenizer = build(tokenizer_name)
    for split, count in (('train', CODE_TRAIN_IMAGES),
                         ('test', TEST_IMAGES)):
        out = codes_dir(codes, split)
        if (out / 'manifest.json').is_file():
            print(f'{out}: exists, skipped')
            continue
        dataset = build_split_dataset(cfg, split)
        dataset = Subset(dataset, range(min(count, len(dataset))))
        start = time.time()
        extract_codes(tokenizer, dataset, out, checkpoint=ckpt,
                      batch_size=250, meta=dict(split=split,
                                                images=len(dataset)),
                      info=dict(config=str(config_of(tokenizer_name))))
        print(f'{out}: {len(dataset)} images in '
              f'{(time.time() - start) / 60:.1f} min')


def train(names: List[str]) -> None:
    for stage in TRAIN_ORDER:
        if names and stage not in names:
            continue
        if stage == 'codes':
            for spec in MODELS.values():
                if spec['kind'] == 'generator':
                    extract(spec['tokenizer'], spec['codes'])
        else:
            train_model(stage)


# ---------------------------------------------------------------- export
def dropped_prefixes(model) -> tuple:
    """Training-checkpoint keys an inference model leaves out: the
    regularizers' (prediction heads) when its config builds none."""
    if len(getattr(model, 'regularizers', ())):
        return tuple(p for p in TRAINING_ONLY if p != 'regularizers.')
    return TRAINING_ONLY


def build(name: str, weights: Optional[Path] = None):
    """The shipped model from its inference config, with the training
    checkpoint (``weights=None``) or a safetensors file loaded."""
    spec = MODELS[name]
    init = init_generator if spec['kind'] == 'generator' else init_tokenizer
    model = init(str(config_of(name)))
    if weights is None:
        load_model_weights(model, checkpoint_of(name),
                           ignore_prefixes=dropped_prefixes(model))
        return model.eval()
    model.load_state_dict(load_file(str(weights)), strict=True)
    return model.eval()


def export(names: List[str]) -> None:
    """Publish each model with ``tools/publish_model.py`` into
    ``fqzoo/zoo_assets/<name>/``: ``<name>-<sha8>.safetensors`` (float16
    weights, the token layout, the config and the training checkpoint's
    sha256 in its metadata), ``<name>.py`` (the standalone config) and
    ``README.md`` (the card, completed by ``measure``)."""
    sys.path.insert(0, str(REPO / 'tools'))
    from publish_model import publish
    for name in names or list(MODELS):
        out = ASSETS / name
        for old in out.glob(f'{name}-*.safetensors'):
            old.unlink()
        sizes = [32, 256] if name == 'fqzoo-photos-fq2' else [32]
        result = publish(checkpoint_of(name), out, config=config_of(name),
                         name=name, sizes=sizes, dtype='float16',
                         drop_prefixes=dropped_prefixes(build(name)),
                         description=MODELS[name]['what'])
        print(f'{result["weights"]}: '
              f'{result["weights"].stat().st_size / 1e6:.2f} MB, sha256 '
              f'{result["sha256"]}')


# --------------------------------------------------------------- measure
def fp32_and_fp16(name: str):
    """The model at full precision (training checkpoint) and with the
    shipped half-precision weights, both computing in float32."""
    return build(name), build(name, weights_of(name)).float()


@torch.no_grad()
def tokenizer_scores(tokenizer, images: torch.Tensor,
                     batch_size: int = 500) -> dict:
    """Mean PSNR (images in [-1, 1] read as [0, 1]), code usage and
    perplexity per sub-codebook over ``images``."""
    psnr, counts = [], None
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size]
        idx = tokenizer.encode(x)
        recon = tokenizer.decode(idx).clamp(-1, 1)
        mse = ((recon - x) / 2).pow(2).flatten(1).mean(1)
        psnr.append(-10 * torch.log10(mse))
        size = int(tokenizer.quantizer.codebook_size)
        batch_counts = torch.stack([
            torch.bincount(idx[:, g].flatten(), minlength=size)
            for g in range(idx.shape[1])])
        counts = batch_counts if counts is None else counts + batch_counts
    probs = counts.float() / counts.sum(1, keepdim=True)
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(1)
    return dict(psnr=float(torch.cat(psnr).mean()),
                usage=[float(v) for v in (counts > 0).float().mean(1)],
                perplexity=[float(v) for v in entropy.exp()])


def fmnist_test_images(count: int = TEST_IMAGES) -> torch.Tensor:
    from fqzoo.apis.codes import build_split_dataset
    from fqzoo.utils.config import load_config
    cfg = load_config(str(config_of('fqzoo-fmnist-fq2')))
    dataset = build_split_dataset(cfg, 'test')
    return torch.stack([dataset[i]['inputs'] for i in range(count)])


@torch.no_grad()
def heldout_nll(gen, codes: str, batch_size: int = 500) -> List[float]:
    """Teacher-forced NLL (nats per sub-token) on the test split's codes."""
    from fqzoo.datasets import CodeDataset
    dataset = CodeDataset(data_root=str(codes_dir(codes, 'test')))
    totals, count = None, 0
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size,
                                                     len(dataset)))]
        codes_batch = torch.stack([torch.as_tensor(np.asarray(i['codes']))
                                   for i in items]).long()
        labels = torch.tensor([int(i['label']) for i in items])
        nll = torch.tensor([row['nll'] for row in gen.predict(codes_batch,
                                                               labels)])
        totals = nll.sum(0) if totals is None else totals + nll.sum(0)
        count += len(items)
    return [float(v) for v in totals / count]


@torch.no_grad()
def sample_images(gen, tok, labels: torch.Tensor, seeds: List[int],
                  cfg_scale: float, batch_size: int = 100) -> np.ndarray:
    """uint8 ``[N, H, W, 3]`` samples, one seed per sample."""
    from fqzoo.models.generators.sampling import rngs_for
    from fqzoo.utils.images import to_uint8
    out = []
    for start in range(0, len(labels), batch_size):
        rng = rngs_for(seeds[start:start + batch_size])
        idx = gen.generate(labels[start:start + batch_size],
                           cfg_scale=cfg_scale, rng=rng)
        out.append(to_uint8(tok.decode(idx)).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def sample_scores(gen, tok, cfg_scale: float, per_class: int,
                  base_seed: int) -> dict:
    from fqzoo.generation.classifier_metrics import fmnist_metrics
    labels = torch.arange(10).repeat_interleave(per_class)
    seeds = [base_seed + i for i in range(len(labels))]
    images = sample_images(gen, tok, labels, seeds, cfg_scale)
    scores = fmnist_metrics(images, labels.numpy())
    return dict(class_accuracy=scores['fmnist_class_accuracy'],
                classifier_fid=scores['fid_fmnist_classifier'])


def measure_model(name: str) -> dict:
    spec = MODELS[name]
    full, half = fp32_and_fp16(name)
    result = dict(parameters=sum(p.numel() for p in full.parameters()))
    if name == 'fqzoo-photos-fq2':
        from fqzoo.evaluation.whole_photo import whole_photo_fidelity
        for label, model in (('fp32', full), ('fp16', half)):
            scores = whole_photo_fidelity(model, size=256, tile=32)
            result[label] = {k: round(float(v), 3) for k, v in scores.items()}
    elif spec['kind'] == 'tokenizer':
        images = fmnist_test_images()
        for label, model in (('fp32', full), ('fp16', half)):
            result[label] = tokenizer_scores(model, images)
    else:
        tok = build(spec['tokenizer'], weights_of(spec['tokenizer'])).float()
        for label, model in (('fp32', full), ('fp16', half)):
            scores = dict(nll=heldout_nll(model, spec['codes']))
            for cfg in (1.0, 3.0):
                scores[f'cfg{cfg:g}'] = sample_scores(model, tok, cfg, 50, 0)
            result[label] = scores
        # the draw-to-draw spread of the same weights: other seeds
        result['fp32_seed_100000'] = dict(cfg3=sample_scores(
            full, tok, 3.0, 50, 100000))
    return result


def training_minutes(name: str) -> Optional[float]:
    """Wall minutes from the training log: the first line to the final
    checkpoint."""
    stamps = []
    for log in sorted((WORK / MODELS[name]['stem']).glob('*/*.log')):
        for line in log.read_text().splitlines():
            if 'Checkpoints will be saved' in line or (
                    f'Saving checkpoint at {MODELS[name]["iters"]} ' in line):
                stamps.append(time.mktime(time.strptime(
                    line[:19], '%Y/%m/%d %H:%M:%S')))
    return round((stamps[-1] - stamps[0]) / 60, 1) if len(stamps) > 1 \
        else None


def measure(names: List[str]) -> None:
    path = ASSETS / 'metrics.json'
    metrics = json.loads(path.read_text()) if path.is_file() else {}
    for name in names or list(MODELS):
        start = time.time()
        metrics[name] = measure_model(name)
        metrics[name]['measured_in_s'] = round(time.time() - start, 1)
        metrics[name]['training_minutes'] = training_minutes(name)
        print(name, json.dumps(metrics[name], indent=1), flush=True)
        path.write_text(json.dumps(metrics, indent=1) + '\n')
    cards(names)


def cards(names: List[str]) -> None:
    """The model cards and ``configs/shipped/metafile.yml`` from
    ``fqzoo/zoo_assets/metrics.json`` and the published files."""
    metrics = json.loads((ASSETS / 'metrics.json').read_text())
    for name in names or list(MODELS):
        if name in metrics:
            print(write_card(name, metrics[name]))
    print(write_metafile(metrics))


# ----------------------------------------------------------------- cards
def _f(value: float, digits: int = 3) -> str:
    return f'{value:.{digits}f}'


def metric_rows(name: str, m: dict) -> List[str]:
    """The card's metric table: fp32 (the training checkpoint) beside
    fp16 (the shipped file), both computed in float32."""
    full, half = m['fp32'], m['fp16']
    rows = ['| metric | fp32 (training checkpoint) | fp16 (shipped file) |',
            '| --- | --- | --- |']
    if name == 'fqzoo-photos-fq2':
        for key in sorted(full):
            rows.append(f'| {key} | {full[key]} | {half[key]} |')
    elif MODELS[name]['kind'] == 'tokenizer':
        rows.append(f'| PSNR (dB, images in [0, 1]) | {_f(full["psnr"], 2)} | '
                    f'{_f(half["psnr"], 2)} |')
        for g in range(len(full['usage'])):
            rows.append(f'| usage, sub-codebook {g} | {_f(full["usage"][g])}'
                        f' | {_f(half["usage"][g])} |')
            rows.append(f'| perplexity, sub-codebook {g} | '
                        f'{_f(full["perplexity"][g], 1)} | '
                        f'{_f(half["perplexity"][g], 1)} |')
    else:
        for g in range(len(full['nll'])):
            rows.append(f'| held-out NLL, sub-token {g} (nats) | '
                        f'{_f(full["nll"][g], 4)} | {_f(half["nll"][g], 4)} |')
        for cfg in ('cfg1', 'cfg3'):
            for key, label in (('class_accuracy', 'class accuracy'),
                               ('classifier_fid', 'classifier FID')):
                rows.append(f'| {label}, {cfg[:3].upper()} {cfg[3:]} | '
                            f'{_f(full[cfg][key])} | {_f(half[cfg][key])} |')
    return rows


def measured_what(name: str) -> str:
    if name == 'fqzoo-photos-fq2':
        return ('The two held-out photos (coffee, grace_hopper) at 256x256, '
                'encoded whole and as 32-pixel tiles '
                '(`fqzoo.evaluation.whole_photo.whole_photo_fidelity`): PSNR '
                'and mean-colour shift (0-255) per photo and their mean.')
    if MODELS[name]['kind'] == 'tokenizer':
        return (f'The first {TEST_IMAGES} Fashion-MNIST test images at 32x32: '
                'mean PSNR of the reconstructions, and per '
                'sub-codebook the fraction of its codes used and the '
                'perplexity of their use.')
    return (f'Held-out NLL: teacher-forced, nats per sub-token, on the codes '
            f'of the first {TEST_IMAGES} test images. Samples: 500 (50 per '
            'class, seeds 0-499, one per sample, no top-k/top-p, '
            f'temperature 1) decoded by `{MODELS[name]["tokenizer"]}` and '
            'scored by the shipped Fashion-MNIST classifier '
            '(`fqzoo/evaluation/assets/fmnist_classifier.pt`, 91.3% test '
            'accuracy): class accuracy, and the Fréchet distance of its '
            'features to the 10000 test images (classifier FID, '
            'docs/metrics.md).')


def noise_note(name: str, m: dict) -> str:
    if MODELS[name]['kind'] != 'generator':
        return ''
    other = m['fp32_seed_100000']['cfg3']
    return (f' Drawing the CFG-3 samples of the fp32 weights again with '
            f'seeds 100000-100499 gives class accuracy '
            f'{_f(other["class_accuracy"])} and classifier FID '
            f'{_f(other["classifier_fid"])}: the draw-to-draw spread that '
            'the fp16 column is to be read against.')


def published_sections(card: Path) -> List[str]:
    """The ``## Model`` and ``## Provenance`` sections that
    ``tools/publish_model.py`` wrote into ``card``."""
    if not card.is_file():
        return []
    keep, lines = False, []
    for line in card.read_text().splitlines():
        if line.startswith('## '):
            keep = line in ('## Model', '## Provenance')
        if keep:
            lines.append(line)
    return lines


def write_card(name: str, m: dict) -> Path:
    """``fqzoo/zoo_assets/<name>/README.md``: what it is, how to use it,
    the command that trained it, its metrics (fp32 and fp16) with the
    command that measured them, and publish_model's model and provenance
    sections."""
    spec = MODELS[name]
    minutes = m.get('training_minutes')
    uses = {'tokenizer': [
        'import torch',
        'from fqzoo.apis import get_model',
        f"tok = get_model('{name}')",
        'images = torch.rand(1, 3, 32, 32) * 2 - 1  # [-1, 1], NCHW',
        'indices = tok.encode(images)              # [B, G, h, w]',
        'recon = tok.decode(indices)'],
        'generator': [
        'import torch',
        'from fqzoo.apis import get_model',
        'from fqzoo.models.generators.sampling import rngs_for',
        f"gen, tok = get_model('{name}'), get_model('{spec.get('tokenizer')}')",
        'labels = torch.arange(10)                # one per class',
        'idx = gen.generate(labels, cfg_scale=3.0, rng=rngs_for(range(10)))',
        'images = tok.decode(idx)                 # [-1, 1], NCHW']}
    card = ASSETS / name / 'README.md'
    lines = [
        f'# {name}', '',
        f'{spec["what"][0].upper()}{spec["what"][1:]}.', '',
        f'- weights: `{weights_of(name)}` '
        f'({weights_of(name).stat().st_size / 1e6:.2f} MB, float16, '
        f'{m["parameters"]:,} parameters), sha256 '
        f'`{file_sha256(weights_of(name))}`',
        f'- config: `{config_of(name)}` (standalone copy: '
        f'`{ASSETS / name / (name + ".py")}`; training config '
        f'`{train_config_of(name)}`)',
        f'- model index: `{name}` in `configs/shipped/metafile.yml`', '',
        '## Use', '', '```python', *uses[spec['kind']], '```', '',
        '## Training', '',
        '```bash', TRAIN_COMMAND.format(name=name),
        f'python tools/train_shipped_models.py export {name}', '```', '',
        f'The first runs `python tools/train.py {train_config_of(name)} '
        f'--work-dir {WORK / spec["stem"]}`'
        + (' after extracting the codes (`train codes`)'
           if spec['kind'] == 'generator' else '')
        + '; the second writes the float16 weights with '
        '`tools/publish_model.py --dtype float16`. '
        f'Schedule: {spec["schedule"]}: shorter than the documented one, '
        'so the whole shipped set trains in about an hour on 2 CPU cores. '
        + (f'Wall time: {minutes} min with one thread, on the shared 2-core '
           'machine with other jobs beside it. ' if minutes else '')
        + 'Seed 0.', '',
        '## Metrics', '', '```bash', MEASURE_COMMAND.format(name=name), '```',
        '', measured_what(name), '', *metric_rows(name, m), '',
        'Half precision: the shipped file holds the weights in float16; '
        'the loaders cast them into the float32 model, so the fp16 column '
        'is the training checkpoint rounded to float16 and computed in '
        'float32.' + noise_note(name, m), '',
        'Not the paper\'s scale: a model of about a million parameters '
        'trained for minutes on CPU, to show the pipeline end to end '
        '(docs/demo.md, docs/generation.md).', '']
    text = '\n'.join(lines + published_sections(card)) + '\n'
    card.write_text(text)
    return card


def results_of(name: str, m: dict) -> List[dict]:
    """The metafile's ``Results`` (of the shipped float16 weights)."""
    half = m['fp16']
    if name == 'fqzoo-photos-fq2':
        return [dict(Task='Image Reconstruction',
                     Dataset='held-out photos coffee, grace_hopper '
                     '(256x256, whole)',
                     Metrics={'PSNR': half['whole/psnr']})]
    if MODELS[name]['kind'] == 'tokenizer':
        return [dict(Task='Image Reconstruction',
                     Dataset=f'Fashion-MNIST test (first {TEST_IMAGES}, '
                     '32x32)', Metrics={'PSNR': round(half['psnr'], 2)})]
    return [dict(Task='Class-conditional Image Generation',
                 Dataset='Fashion-MNIST (32x32, 500 samples, CFG 3)',
                 Metrics={
                     'Held-out NLL': round(float(np.mean(half['nll'])), 4),
                     'Class Accuracy': round(half['cfg3']['class_accuracy'],
                                             3),
                     'Classifier FID': round(half['cfg3']['classifier_fid'],
                                             3)})]


def write_metafile(metrics: dict) -> Path:
    """``configs/shipped/metafile.yml``: the shipped models in the model
    index, their weights by repository-relative path and sha256."""
    import yaml

    from fqzoo.utils.token_layout import checkpoint_layout
    models = []
    for name, spec in MODELS.items():
        if not list((ASSETS / name).glob(f'{name}-*.safetensors')):
            continue  # not exported yet
        layout = checkpoint_layout(weights_of(name)) or {}
        grids = layout.get('grids') or {}
        size = 256 if name == 'fqzoo-photos-fq2' else 32
        params = sum(p.numel() for p in build(name, weights_of(name))
                     .parameters())
        meta = {
            'Parameters': params,
            'Codebooks': layout.get('codebook_sizes'),
            'Token Grid': layout.get('grid') or grids.get(f'{size}x{size}'),
            'Downsample': layout.get('downsample_factor'),
            'Image Size': size,
            'Training Resources': f'1 CPU thread, {spec["schedule"]}'}
        if spec['kind'] == 'generator':
            meta['Tokenizer'] = spec['tokenizer']
        models.append({
            'Name': name, 'In Collection': 'fqzoo shipped',
            'Config': str(config_of(name)), 'Metadata': meta,
            'Results': results_of(name, metrics[name])
            if name in metrics else [],
            'Weights': {'path': str(weights_of(name)),
                        'sha256': file_sha256(weights_of(name))},
            'README': str(ASSETS / name / 'README.md')})
    collection = {
        'Name': 'fqzoo shipped',
        'Metadata': {
            'Training Data': ['Fashion-MNIST', 'bundled photo patches '
                              '(scikit-image, scikit-learn, matplotlib)'],
            'Training Resources': '2 CPU cores, one training at a time'},
        'Paper': {'Title': 'Factorized Visual Tokenization and Generation',
                  'URL': 'https://arxiv.org/abs/2411.16681'},
        'README': 'docs/demo.md'}
    path = Path('configs/shipped/metafile.yml')
    path.write_text(
        '# The small models shipped in fqzoo/zoo_assets/ (OpenMMLab metafile '
        'format),\n# written by `python tools/train_shipped_models.py cards`; '
        'Weights give a\n# repository-relative path and its sha256.\n'
        + yaml.safe_dump({'Collections': [collection], 'Models': models},
                         sort_keys=False, width=79))
    return path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('stage', choices=['train', 'export', 'measure',
                                          'cards'])
    parser.add_argument('names', nargs='*',
                        help=f'models (or "codes" for train); default all: '
                        f'{TRAIN_ORDER}')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    os.chdir(REPO)
    unknown = [n for n in args.names if n not in TRAIN_ORDER]
    if unknown:
        raise SystemExit(f'unknown model(s) {unknown}: choose from '
                         f'{TRAIN_ORDER}')
    {'train': train, 'export': export, 'measure': measure,
     'cards': cards}[args.stage](args.names)


if __name__ == '__main__':
    with exit_on_input_error():
        main()
