"""The fqzoo demo page (Gradio): the shipped tokenizers and generators, on
CPU, offline. ``make demo`` installs the ``demo`` extra and runs::

    python -m fqzoo.demo.app --port 7860

Two tabs: **Tokenizer** (a bundled photo or an upload: reconstruction, each
sub-codebook's decode alone, the code maps, PSNR, tokens per image) and
**Generation** (a Fashion-MNIST class, CFG scale, temperature, top-k/top-p,
seed and number of samples; FAR and AR side by side, with the settings and
the code that draws the same pictures). Gradio's analytics are off and the
theme uses the system fonts, so the page loads nothing from the network.
docs/demo.md has the details.
"""
import argparse
import functools
import logging
import os
from pathlib import Path
from typing import List, Optional

import numpy as np

from . import core

os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')
os.environ.setdefault('HF_HUB_OFFLINE', '1')

import gradio as gr  # noqa: E402  (after the environment above)

LOGGER = logging.getLogger('fqzoo.demo')
SYSTEM_FONTS = ['ui-sans-serif', 'system-ui', 'sans-serif']
MONO_FONTS = ['ui-monospace', 'monospace']
MAX_BRANCHES = 2
FMNIST_EXAMPLES = 'Fashion-MNIST test image'


def image(**kwargs) -> gr.Image:
    """An image component (or update) sent as PNG: Gradio's default WebP
    is lossy, and the page must show the pixels the PSNR is of."""
    return gr.Image(format='png', **kwargs)


def theme() -> gr.themes.Base:
    """Gradio's base theme with system fonts (the default one fetches web
    fonts from a CDN)."""
    return gr.themes.Base(font=SYSTEM_FONTS, font_mono=MONO_FONTS)


@functools.lru_cache(maxsize=1)
def fmnist_test_set():
    """The Fashion-MNIST test split, or None where the dataset is absent."""
    from fqzoo.datasets import FashionMNIST
    try:
        return FashionMNIST(split='test', image_size=28)
    except (FileNotFoundError, OSError, ValueError):
        return None


def fmnist_examples() -> List[str]:
    """One Fashion-MNIST test image per class, when the dataset is here."""
    dataset = fmnist_test_set()
    if dataset is None:
        return []
    first = {}
    for index in range(min(len(dataset), 200)):
        first.setdefault(int(dataset.labels[index]), index)
    return [f'{FMNIST_EXAMPLES} {i} ({core.CLASS_NAMES[c]})'
            for c, i in sorted(first.items())]


def source_image(choice: str):
    """The PIL image of a bundled choice."""
    if choice.startswith(FMNIST_EXAMPLES):
        from PIL import Image
        index = int(choice[len(FMNIST_EXAMPLES):].split()[0])
        image = np.asarray(fmnist_test_set().images[index])
        return Image.fromarray(image).convert('RGB')
    return core.bundled_photo(choice)


def error_message(err: Exception) -> str:
    if isinstance(err, core.DemoInputError):
        return f'**Cannot use this input.** {err}'
    LOGGER.exception('demo error')
    return (f'**Something went wrong** ({type(err).__name__}: {err}). '
            'The server log has the details.')


def run_tokenizer(tokenizer_name: str, choice: Optional[str],
                  upload: Optional[str]) -> list:
    """The tokenizer view's outputs: status, original, reconstruction,
    MAX_BRANCHES branch decodes and MAX_BRANCHES code maps."""
    blank = [None] * (2 + 2 * MAX_BRANCHES)
    try:
        name, kind, side = core.TOKENIZERS[tokenizer_name]
        picture = core.read_upload(upload) if upload \
            else source_image(choice)
        result = core.tokenize(core.shipped_model(name),
                               core.to_input(picture, kind, side))
    except Exception as err:  # every failure becomes a message in the page
        return [error_message(err)] + blank
    where = f'the upload {Path(upload).name}' if upload else choice
    branches, maps = result.branches, result.code_maps
    outputs = [f'**{tokenizer_name}** on {where}: {result.summary()}',
               image(value=result.original),
               image(value=result.reconstruction)]
    for g in range(MAX_BRANCHES):
        outputs.append(image(
            value=branches[g] if g < len(branches) else None,
            visible=g < len(branches),
            label=f'sub-codebook {g} alone (others at their mean)'))
    for g in range(MAX_BRANCHES):
        outputs.append(image(
            value=maps[g] if g < len(maps) else None, visible=g < len(maps),
            label=f'code map {g} ({result.codebook_sizes[0]} codes)'))
    return outputs


def run_generation(class_name: str, num: float, cfg_scale: float,
                   temperature: float, top_k: float, top_p: float,
                   seed: float, progress=gr.Progress()) -> list:
    """The generation view's outputs: FAR grid, AR grid, settings."""
    try:
        settings = core.SampleSettings(
            class_index=core.CLASS_NAMES.index(class_name), num=int(num),
            cfg_scale=float(cfg_scale), temperature=float(temperature),
            top_k=int(top_k), top_p=float(top_p), seed=int(seed)).check()
        grids, lines = [], []
        steps = len(core.GENERATORS)
        for step, (label, (gen_name, tok_name)) in enumerate(
                core.GENERATORS.items()):
            def report(done: int, total: int, step=step, label=label) -> None:
                progress((step * total + done, steps * total),
                         desc=f'{label}: drawing tokens, position {done} of '
                         f'{total}')

            images = core.sample(core.shipped_model(gen_name),
                                 core.shipped_model(tok_name), settings,
                                 report)
            grids.append(core.tile(list(images)))
            lines.append(f'**{label}** (`{gen_name}` + `{tok_name}`):\n\n'
                         f'```python\n{settings.reproduce(gen_name, tok_name)}'
                         '\n```')
    except Exception as err:  # every failure becomes a message in the page
        return [None, None, error_message(err)]
    text = (f'Class {settings.class_index} ({class_name}), {settings.num} '
            f'samples, CFG scale {settings.cfg_scale:g}, temperature '
            f'{settings.temperature:g}, top-k {settings.top_k}, top-p '
            f'{settings.top_p:g}, seeds {settings.seed}-'
            f'{settings.seed + settings.num - 1} (sample i: seed + i, '
            'left to right, top to bottom).\n\n' + '\n\n'.join(lines))
    return grids + [text]


def build_demo() -> gr.Blocks:
    """The page (not launched)."""
    photos = list(core.PHOTO_NAMES) + fmnist_examples()
    with gr.Blocks(title='fqzoo demo', analytics_enabled=False) as demo:
        gr.Markdown('# fqzoo: factorized visual tokens, on CPU\n'
                    'Small models trained on 2 CPU cores and shipped with '
                    'fqzoo (`fqzoo/zoo_assets/`, docs/demo.md).')
        with gr.Tab('Tokenizer', elem_id='tab-tokenizer'):
            with gr.Row():
                with gr.Column(scale=1):
                    tok_name = gr.Dropdown(list(core.TOKENIZERS),
                                           value=list(core.TOKENIZERS)[0],
                                           label='Tokenizer',
                                           elem_id='tok-name')
                    choice = gr.Dropdown(photos, value='astronaut',
                                         label='Bundled photo',
                                         elem_id='tok-photo')
                    upload = gr.File(label='... or upload an image',
                                     type='filepath', elem_id='tok-upload')
                    button = gr.Button('Tokenize', variant='primary',
                                       elem_id='tok-run')
                with gr.Column(scale=3):
                    status = gr.Markdown(elem_id='tok-status')
                    with gr.Row():
                        original = image(label='input', elem_id='tok-input',
                                            interactive=False)
                        recon = image(label='reconstruction (all '
                                         'sub-codebooks)', elem_id='tok-recon',
                                         interactive=False)
                    with gr.Row():
                        branches = [image(label=f'sub-codebook {g} alone',
                                             elem_id=f'tok-branch-{g}',
                                             interactive=False)
                                    for g in range(MAX_BRANCHES)]
                    with gr.Row():
                        maps = [image(label=f'code map {g}',
                                         elem_id=f'tok-codes-{g}',
                                         interactive=False)
                                for g in range(MAX_BRANCHES)]
            outputs = [status, original, recon] + branches + maps
            inputs = [tok_name, choice, upload]
            button.click(run_tokenizer, inputs, outputs)
            upload.upload(run_tokenizer, inputs, outputs)
            tok_name.change(run_tokenizer, inputs, outputs)
            choice.change(lambda n, c: run_tokenizer(n, c, None),
                          [tok_name, choice], outputs)
        with gr.Tab('Generation', elem_id='tab-generation'):
            with gr.Row():
                with gr.Column(scale=1):
                    cls = gr.Dropdown(list(core.CLASS_NAMES), value='Trouser',
                                      label='Fashion-MNIST class',
                                      elem_id='gen-class')
                    num = gr.Slider(1, core.MAX_SAMPLES, value=8, step=1,
                                    label='samples', elem_id='gen-num')
                    cfg = gr.Slider(0, 8, value=3.0, step=0.5,
                                    label='CFG scale (1: no guidance)',
                                    elem_id='gen-cfg')
                    temp = gr.Slider(0, 2, value=1.0, step=0.05,
                                     label='temperature (0: argmax)',
                                     elem_id='gen-temperature')
                    top_k = gr.Number(value=0, precision=0, minimum=0,
                                      label='top-k (0: all codes)',
                                      elem_id='gen-top-k')
                    top_p = gr.Slider(0.05, 1, value=1.0, step=0.05,
                                      label='top-p', elem_id='gen-top-p')
                    seed = gr.Number(value=0, precision=0, minimum=0,
                                     label='seed', elem_id='gen-seed')
                    sample = gr.Button('Sample', variant='primary',
                                       elem_id='gen-run')
                with gr.Column(scale=3):
                    with gr.Row():
                        grids = [image(label=label, elem_id=f'gen-out-{i}',
                                          interactive=False)
                                 for i, label in enumerate(core.GENERATORS)]
                    settings = gr.Markdown(elem_id='gen-settings')
            sample.click(run_generation,
                         [cls, num, cfg, temp, top_k, top_p, seed],
                         grids + [settings])
        demo.load(run_tokenizer, inputs, outputs)
    return demo


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='The fqzoo demo page')
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=7860)
    parser.add_argument('--threads', type=int, default=1,
                        help='intra-op threads of torch (default 1: these '
                        'small models run 4-5x slower with 2 threads on a '
                        'busy 2-core machine, docs/benchmarks.md)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    import torch
    torch.set_num_threads(args.threads)
    for name, *_ in list(core.TOKENIZERS.values()) + list(
            core.GENERATORS.values()):
        core.shipped_model(name)  # load once, before the first request
    demo = build_demo()
    demo.queue().launch(server_name=args.host, server_port=args.port,
                        ssr_mode=False, theme=theme(), footer_links=[],
                        max_file_size=4 * core.MAX_BYTES, show_error=False)


if __name__ == '__main__':
    main()
