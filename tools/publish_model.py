"""Make a training checkpoint ready to publish (MMEngine's publish_model
convention): the optimizer, message hub, scheduler and EMA bookkeeping
stripped, the EMA or the raw weights chosen, the sha256 prefix of the file
in its name.

Writes into ``OUT_DIR``:

- ``<name>-<first 8 hex of its sha256>.safetensors``: the inference model's
  weights (a tokenizer without its discriminator and perceptual loss),
  checked against the config, with string metadata: the token layout
  (``token_layout``, JSON), the config, the source checkpoint's sha256, the
  weights chosen and the fqzoo git commit;
- ``<name>.py``: the config, standalone (``_base_`` files merged; a
  generator's token grid and codebook sizes written out);
- ``README.md``: the model card: what it is, how it was trained, its
  metrics with the commands that measured them (``--metric`` /
  ``--metric-command``, and the ``metrics.json`` files of ``--work-dir``)
  and its provenance.

Both loaders read the file: ``init_tokenizer(CFG, checkpoint=FILE)`` /
``init_generator`` and ``fqzoo.apis.get_model(NAME, pretrained=FILE)``.

Examples:
    python tools/publish_model.py work_dirs/quickstart/iter_2500.pth \\
        published/fq2_effnet_tiny_photos --work-dir work_dirs/quickstart \\
        --metric-command "make quickstart"
    python tools/publish_model.py work_dirs/far/epoch_300.pth published/far_b \\
        --weights ema --metric gFID=3.38 --metric IS=248 \\
        --metric-command "tools/sample.py ... && tools/eval_generation.py ..."
"""
import argparse
import datetime
import json
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.config import Config

from fqzoo.apis import init_generator, init_tokenizer
from fqzoo.apis.inference import TRAINING_ONLY
from fqzoo.errors import exit_on_input_error
from fqzoo.registry import GENERATORS
from fqzoo.utils.checkpoint import (
    extract_state_dict,
    load_state_dict_checked,
    safe_load,
)
from fqzoo.utils.files import file_sha256
from fqzoo.utils.token_layout import (
    KEY,
    TOKENIZER_KEY,
    check_same_layout,
    generator_layout,
    layout_meta,
    merge_layouts,
    tokenizer_layout,
)

REPO = Path(__file__).resolve().parents[1]
# Entries of an MMEngine checkpoint that are not the model's weights.
STRIPPED = ('optimizer', 'message_hub', 'param_schedulers', 'ema_state_dict',
            'resume_state')


def choose_weights(checkpoint: dict, source: Path,
                   weights: Optional[str] = None) -> Tuple[dict, str]:
    """``(state dict, 'ema' | 'raw')`` of an MMEngine checkpoint.

    MMEngine's ``EMAHook`` saves the averaged weights as ``state_dict`` and
    the raw ones, ``module.``-prefixed, in ``ema_state_dict``
    (``EMAHook.before_save_checkpoint`` swaps them), so ``'ema'`` is
    ``state_dict`` and ``'raw'`` puts the raw parameters back.

    Args:
        checkpoint (dict): the loaded checkpoint.
        source (Path): its file (named in errors).
        weights (str, optional): ``'ema'`` or ``'raw'``. Defaults to EMA
            when the checkpoint has an EMA, else raw.

    Raises:
        KeyError: ``'ema'`` asked of a checkpoint without ``ema_state_dict``.
    """
    state = dict(extract_state_dict(checkpoint))
    ema = checkpoint.get('ema_state_dict') if isinstance(checkpoint, dict) \
        else None
    weights = weights or ('ema' if ema else 'raw')
    if weights == 'ema' and not ema:
        raise KeyError(f'{source} has no ema_state_dict (trained without '
                       'EMAHook): publish its raw weights (--weights raw)')
    if weights == 'raw' and ema:
        state.update({k[len('module.'):]: v for k, v in ema.items()
                      if k.startswith('module.')})
    return state, weights


def canonical_header(path: Path) -> None:
    """Rewrite a safetensors file's JSON header with sorted keys, so the
    same weights and metadata give the same bytes, hence the same sha256
    and file name (``save_file`` writes the metadata in hash-map order,
    which changes from run to run). The tensor data is copied unchanged:
    its offsets are relative to the end of the header."""
    with open(path, 'rb') as src:
        size = struct.unpack('<Q', src.read(8))[0]
        header = json.loads(src.read(size))
        text = json.dumps(header, sort_keys=True, separators=(',', ':'),
                          ensure_ascii=False).encode()
        text += b' ' * (-len(text) % 8)  # data stays 8-byte aligned
        tmp = path.with_name(path.name + '.header')
        with open(tmp, 'wb') as dst:
            dst.write(struct.pack('<Q', len(text)) + text)
            shutil.copyfileobj(src, dst, 1 << 22)
    tmp.replace(path)


def image_sizes(config: Config) -> List[int]:
    """The image sizes of the config's data (crop or image size of its
    train, val and test sets)."""
    sizes = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = (config.get(loader) or {}).get('dataset') or {}
        size = dataset.get('crop_size') or dataset.get('image_size')
        if isinstance(size, int) and size not in sizes:
            sizes.append(size)
    return sizes


def model_layout(model: torch.nn.Module, config: Config,
                 recorded: Optional[dict],
                 sizes: Optional[List[int]] = None) -> dict:
    """The token layout of the built model (codebook sizes, branch names,
    downsample factor, grids at ``sizes``, by default the config's image
    sizes; a generator's grid), completed by the one its checkpoint
    ``recorded``."""
    if hasattr(model, 'generate'):
        built = generator_layout(model)
    else:
        sizes = sizes or [s for s in image_sizes(config)
                          if s % model.encoder.downsample_factor == 0]
        built = tokenizer_layout(model, image_sizes=sizes)
    check_same_layout(built, recorded, first_name='the config\'s model',
                      second_name='the checkpoint\'s recorded layout')
    return merge_layouts(built, recorded)


def build_inference_model(config: Config) -> torch.nn.Module:
    """The config's model as the loaders build it (a tokenizer without its
    training-only parts)."""
    kind = config.model.get('type')
    if isinstance(kind, str) and GENERATORS.get(kind) is not None:
        return init_generator(config)
    return init_tokenizer(config)


def standalone_config(config: Config, model: torch.nn.Module) -> Config:
    """``config`` with a generator's token layout written out (instead of
    a codes folder or tokenizer config it would read it from)."""
    config = Config(config.to_dict())
    if hasattr(model, 'generate'):
        config.model.update(grid_size=list(model.grid_size),
                            codebook_sizes=list(model.codebook_sizes),
                            tokens=None)
    return config


def git_commit() -> str:
    """``HEAD`` of the fqzoo checkout, ``+dirty`` with uncommitted
    changes; ``unknown`` outside a git checkout."""
    try:
        head = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=REPO,
                              capture_output=True, text=True, check=True)
        dirty = subprocess.run(['git', 'status', '--porcelain',
                                '--untracked-files=no'], cwd=REPO,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'
    return head.stdout.strip() + ('+dirty' if dirty.stdout.strip() else '')


def parse_metric(text: str) -> Tuple[str, float]:
    """``'PSNR=26.18'`` -> ``('PSNR', 26.18)``."""
    name, sep, value = text.partition('=')
    try:
        if not sep or not name:
            raise ValueError
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'--metric takes NAME=NUMBER, got {text!r}') from None


def work_dir_metrics(work_dir: Path) -> List[dict]:
    """The ``metrics.json`` files of ``work_dir`` and its sub-folders (one
    level): ``tools/test.py --out``, ``make quickstart`` and
    ``tools/eval_generation.py`` write them. Each gives ``dict(metrics,
    command, file)``; the command is the ``eval_command`` of a
    ``sampling.json`` beside it, else the file's ``command``, else None."""
    found = []
    for path in sorted([work_dir / 'metrics.json',
                        *work_dir.glob('*/metrics.json')]):
        if not path.is_file():
            continue
        data = json.loads(path.read_text())
        values = data.get('metrics', data) if isinstance(data, dict) else {}
        values = {k: v for k, v in values.items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool)}
        command = data.get('command') if isinstance(data, dict) else None
        sampling = path.with_name('sampling.json')
        if sampling.is_file():
            command = json.loads(sampling.read_text()).get('eval_command',
                                                           command)
        if values:
            found.append(dict(metrics=values, command=command, file=path))
    return found


def training_summary(meta: dict, config: Config) -> List[str]:
    """Card lines on how the checkpoint was trained (its MMEngine meta and
    the config's schedule)."""
    lines = []
    steps = [f'{k} {meta[k]}' for k in ('epoch', 'iter') if meta.get(k)]
    if steps:
        lines.append(f'- checkpoint at {", ".join(steps)}')
    train_cfg = config.get('train_cfg') or {}
    budget = train_cfg.get('max_iters') or train_cfg.get('max_epochs')
    if budget:
        unit = 'iterations' if train_cfg.get('max_iters') else 'epochs'
        lines.append(f'- schedule: {budget} {unit}')
    optim = config.get('optim_wrapper') or {}
    optimizers = [('', optim.get('optimizer'))] + [
        (f' ({part})', wrapper.get('optimizer'))
        for part, wrapper in optim.items() if isinstance(wrapper, dict)]
    for part, opt in optimizers:
        if isinstance(opt, dict):
            lines.append(f'- optimizer{part}: {opt.get("type")}, lr '
                         f'{opt.get("lr")}')
    loader = config.get('train_dataloader') or {}
    if loader:
        dataset = loader.get('dataset', {})
        lines.append(f'- data: {dataset.get("type")}, batch '
                     f'{loader.get("batch_size")} per process')
    for key in ('seed', 'experiment_name', 'time'):
        if meta.get(key) is not None:
            lines.append(f'- {key.replace("_", " ")}: {meta[key]}')
    return lines or ['- (the checkpoint records no training meta)']


def model_card(name: str, *, model: torch.nn.Module, layout: dict,
               weights_file: Path, sha256: str, source: Path,
               source_sha256: str, weights: str, stripped: List[str],
               commit: str, training: List[str], metrics: List[dict],
               description: Optional[str]) -> str:
    """The ``README.md`` text."""
    kind = 'generator' if hasattr(model, 'generate') else 'tokenizer'
    loader = f'init_{kind}'
    params = sum(p.numel() for p in model.parameters())
    what = description or (
        f'An fqzoo {type(model).__name__} ({kind}), {params:,} parameters.')
    grids = [f'{size} px: {h}x{w}'
             for size, (h, w) in (layout.get('grids') or {}).items()]
    if layout.get('grid'):
        grids.insert(0, 'x'.join(map(str, layout['grid'])))
    lines = [
        f'# {name}', '', what, '',
        '| file | sha256 |', '| --- | --- |',
        f'| `{weights_file.name}` | `{sha256}` |', '',
        f'Config: `{name}.py`.', '', '## Use', '', '```python',
        f'from fqzoo.apis import {loader}',
        f"model = {loader}('{name}.py', checkpoint='{weights_file.name}')",
        '```', '', '## Model', '',
        f'- {type(model).__name__}, {params:,} parameters',
        f'- codebook sizes: {layout["codebook_sizes"]}',
        f'- sub-tokens: {layout.get("sub_tokens") or "not recorded"}',
        f'- token grid: {", ".join(grids) or "not recorded"}',
        f'- downsample: {layout.get("downsample_factor") or "not recorded"}',
        f'- the safetensors metadata holds this layout (`{KEY}`)',
    ]
    lines += ['', '## Training', '', *training,
              f'- weights: {"EMA" if weights == "ema" else "raw (not EMA)"}',
              '', '## Metrics', '']
    if metrics:
        lines += ['| metric | value | measured by |', '| --- | --- | --- |']
        for entry in metrics:
            how = f'`{entry["command"]}`' if entry.get('command') else \
                'command not recorded'
            if entry.get('file'):
                how += f' ({entry["file"]})'
            lines += [f'| {k} | {v:g} | {how} |'
                      for k, v in entry['metrics'].items()]
    else:
        lines.append('None recorded (pass --metric / --metric-command or '
                     '--work-dir).')
    lines += ['', '## Provenance', '',
              f'- source checkpoint: `{source.name}`, sha256 `{source_sha256}`',
              f'- stripped: {", ".join(stripped) or "nothing"}',
              f'- fqzoo commit: `{commit}`',
              f'- published by tools/publish_model.py on '
              f'{datetime.date.today().isoformat()}', '']
    return '\n'.join(lines)


def publish(checkpoint: Path, out_dir: Path, *,
            config: Optional[Path] = None, name: Optional[str] = None,
            weights: Optional[str] = None,
            metrics: Optional[Dict[str, float]] = None,
            metric_command: Optional[str] = None,
            work_dir: Optional[Path] = None,
            description: Optional[str] = None,
            sizes: Optional[List[int]] = None,
            dtype: Optional[str] = None,
            drop_prefixes: Tuple[str, ...] = ()) -> dict:
    """Publish ``checkpoint`` into ``out_dir``; returns the paths written
    (``weights``, ``config``, ``card``) and the file's ``sha256``.
    ``dtype`` (``'float16'``, ``'bfloat16'``) stores the floating-point
    tensors in it (the loaders cast them back to the model's dtype);
    None keeps them as trained. ``drop_prefixes`` names checkpoint keys
    the config's model leaves out on purpose (``'regularizers.'``: an
    inference config without the training-only regularizer heads).

    Raises:
        ValueError: no config given and none recorded in the checkpoint.
        KeyError: the weights do not fit the config's model, or ``'ema'``
            asked of a checkpoint without one.
    """
    from safetensors.torch import save_file
    raw = safe_load(checkpoint)
    meta = (raw.get('meta') or {}) if isinstance(raw, dict) else {}
    if config is not None:
        cfg = Config.fromfile(str(config))
    elif meta.get('cfg'):
        cfg = Config.fromstring(meta['cfg'], file_format='.py')
    else:
        raise ValueError(f'{checkpoint} records no config (meta.cfg): pass '
                         '--config')
    # default: the config's name (tools/train.py names work dirs so)
    name = name or (Path(config).stem if config else
                    checkpoint.resolve().parent.name)
    state, weights = choose_weights(raw, checkpoint, weights)
    model = build_inference_model(cfg)
    ignore = tuple(drop_prefixes) + (() if hasattr(model, 'generate') else
                                     tuple(f'{part}.' for part in
                                           TRAINING_ONLY))
    load_state_dict_checked(model, state, checkpoint,
                            ignore_prefixes=ignore)
    layout = model_layout(model, cfg, meta.get(KEY), sizes)
    out_dir.mkdir(parents=True, exist_ok=True)
    config_file = out_dir / f'{name}.py'
    standalone = standalone_config(cfg, model)
    standalone.dump(str(config_file))
    source_sha256 = file_sha256(checkpoint)
    commit = git_commit()
    cast = getattr(torch, dtype) if dtype else None
    tensors = {k: (v.to(cast) if cast is not None and v.is_floating_point()
                   else v).detach().cpu().contiguous()
               for k, v in model.state_dict().items()}
    tmp = out_dir / f'.{name}.safetensors.tmp'
    save_file(tensors, str(tmp), metadata=dict(
        fqzoo_name=name, **layout_meta(layout),
        config=standalone.pretty_text, weights=weights,
        source_sha256=source_sha256, git_commit=commit,
        **({'dtype': dtype} if dtype else {}),
        # a generator's tokenizer (from its codes), so the copy pairs as
        # its source does (fqzoo.generation.provenance.check_pairing)
        **({TOKENIZER_KEY: json.dumps(meta[TOKENIZER_KEY], sort_keys=True)}
           if meta.get(TOKENIZER_KEY) else {})))
    canonical_header(tmp)
    sha256 = file_sha256(tmp)
    weights_file = out_dir / f'{name}-{sha256[:8]}.safetensors'
    tmp.replace(weights_file)
    found = [dict(metrics=metrics, command=metric_command)] if metrics \
        else []
    if work_dir is not None:
        found += [dict(entry, command=entry['command'] or metric_command)
                  for entry in work_dir_metrics(work_dir)]
    card = out_dir / 'README.md'
    card.write_text(model_card(
        name, model=model, layout=layout, weights_file=weights_file,
        sha256=sha256, source=checkpoint, source_sha256=source_sha256,
        weights=weights,
        stripped=[k for k in STRIPPED if isinstance(raw, dict) and k in raw],
        commit=commit, training=training_summary(meta, cfg), metrics=found,
        description=description))
    return dict(weights=weights_file, config=config_file, card=card,
                sha256=sha256)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Strip a checkpoint to its weights and publish them as '
        'safetensors with their config and a model card')
    parser.add_argument('checkpoint', type=Path, help='training checkpoint')
    parser.add_argument('out_dir', type=Path, help='output folder')
    parser.add_argument('--config', type=Path, help='config of the model '
                        '(default: the one the checkpoint records)')
    parser.add_argument('--name', help='model name (default: the config '
                        'file name, else the checkpoint\'s folder name)')
    parser.add_argument('--weights', choices=['ema', 'raw'],
                        help='EMA or raw weights (default: EMA when the '
                        'checkpoint has one)')
    parser.add_argument('--metric', type=parse_metric, action='append',
                        default=[], metavar='NAME=VALUE',
                        help='a measured metric (repeat for several)')
    parser.add_argument('--metric-command',
                        help='the command that measured the --metric values '
                        '(and the --work-dir metrics that record none)')
    parser.add_argument('--work-dir', type=Path,
                        help='also report the metrics.json files here')
    parser.add_argument('--description', help='what the model is, one '
                        'paragraph for the card')
    parser.add_argument('--image-size', type=int, nargs='+', dest='sizes',
                        help='image sizes whose token grids the layout '
                        'records (default: those of the config\'s data)')
    parser.add_argument('--dtype', choices=['float16', 'bfloat16'],
                        help='store the floating-point weights in this '
                        'precision (default: as trained)')
    parser.add_argument('--drop-prefix', action='append', default=[],
                        dest='drop_prefixes', metavar='PREFIX',
                        help='checkpoint keys the config\'s model leaves '
                        'out on purpose (e.g. regularizers.)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    result = publish(args.checkpoint, args.out_dir, config=args.config,
                     name=args.name, weights=args.weights,
                     metrics=dict(args.metric), work_dir=args.work_dir,
                     metric_command=args.metric_command,
                     description=args.description, sizes=args.sizes,
                     dtype=args.dtype,
                     drop_prefixes=tuple(args.drop_prefixes))
    print(f'Wrote {result["weights"]} (sha256 {result["sha256"]}), '
          f'{result["config"]} and {result["card"]}')
    return result


if __name__ == '__main__':
    with exit_on_input_error():
        main()
