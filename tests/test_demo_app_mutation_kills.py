"""The demo page (fqzoo/demo/app.py) as a caller sees it: the components
build_demo declares (labels, defaults, ranges, wiring), what the callbacks
send to fqzoo.demo.core and return, the command line and the launch.
fqzoo.demo.core is replaced by recording fakes, so no model runs here."""
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from fqzoo.demo import core

gradio = pytest.importorskip('gradio', reason='the demo extra is not '
                             'installed (make demo installs it)')
from fqzoo.demo import app  # noqa: E402  (needs gradio)

FQ2 = 'Fashion-MNIST FQ-2 (2 x 256 codes)'
VQ = 'Fashion-MNIST VQ (512 codes)'
EXAMPLE = 'Fashion-MNIST test image 7 (Sneaker)'
TOKENIZER_OUTPUTS = ['tok-status', 'tok-input', 'tok-recon', 'tok-branch-0',
                     'tok-branch-1', 'tok-codes-0', 'tok-codes-1']
TOKENIZER_INPUTS = ['tok-name', 'tok-photo', 'tok-upload']


def pixels(update) -> np.ndarray:
    """The picture an image update sends to the page, read back."""
    return np.asarray(Image.open(update.value['path']))


def block(value: int) -> np.ndarray:
    return np.full((4, 4, 3), value, np.uint8)


class FakeDataset:
    """The attributes of FashionMNIST that the page reads."""

    def __init__(self, labels):
        self.labels = np.asarray(labels)
        self.images = [np.full((28, 28), 10 * i % 256, np.uint8)
                       for i in range(len(labels))]

    def __len__(self) -> int:
        return len(self.labels)


# ------------------------------------------------------------- the page
@pytest.fixture(scope='module')
def page():
    """The built page (a Fashion-MNIST example in the photo list), built
    where the environment would turn Gradio's analytics on."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('GRADIO_ANALYTICS_ENABLED', 'True')
        patch.setattr(app, 'fmnist_examples', lambda: [EXAMPLE])
        demo = app.build_demo()
    by_id = {b.elem_id: b for b in demo.blocks.values()
             if getattr(b, 'elem_id', None)}
    return demo, by_id


def column_scale(component) -> int:
    parent = component.parent
    while not isinstance(parent, gradio.Column):
        parent = parent.parent
    return parent.scale


def test_page_title_heading_and_tabs(page):
    demo, by_id = page
    assert demo.title == 'fqzoo demo' and demo.analytics_enabled is False
    headings = [b.value for b in demo.blocks.values()
                if isinstance(b, gradio.Markdown) and not b.elem_id]
    assert headings == ['# fqzoo: factorized visual tokens, on CPU\nSmall '
                        'models trained on 2 CPU cores and shipped with fqzoo '
                        '(`fqzoo/zoo_assets/`, docs/demo.md).']
    tabs = [(b.label, b.elem_id) for b in demo.blocks.values()
            if isinstance(b, gradio.Tab)]
    assert tabs == [('Tokenizer', 'tab-tokenizer'),
                    ('Generation', 'tab-generation')]
    assert isinstance(by_id['tok-status'], gradio.Markdown)
    assert isinstance(by_id['gen-settings'], gradio.Markdown)
    # settings on the left (1 part), results on the right (3 parts)
    assert [column_scale(by_id[i]) for i in
            ('tok-name', 'tok-run', 'tok-status', 'tok-input')] == [1, 1, 3, 3]
    assert [column_scale(by_id[i]) for i in
            ('gen-class', 'gen-run', 'gen-out-0')] == [1, 1, 3]


def test_tokenizer_controls_and_their_defaults(page):
    _, by_id = page
    name, photo = by_id['tok-name'], by_id['tok-photo']
    assert isinstance(name, gradio.Dropdown) and name.label == 'Tokenizer'
    assert [c for c, _ in name.choices] == [
        'Photos FQ-2 (2 x 512 codes)', FQ2, VQ]
    assert name.value == 'Photos FQ-2 (2 x 512 codes)'
    assert isinstance(photo, gradio.Dropdown) and photo.label == 'Bundled photo'
    assert [c for c, _ in photo.choices] == list(core.PHOTO_NAMES) + [EXAMPLE]
    assert photo.value == 'astronaut'
    upload = by_id['tok-upload']
    assert isinstance(upload, gradio.File)
    assert upload.label == '... or upload an image'
    assert upload.type == 'filepath'
    button = by_id['tok-run']
    assert isinstance(button, gradio.Button)
    assert (button.value, button.variant) == ('Tokenize', 'primary')


def test_result_images_are_png_outputs_with_their_labels(page):
    _, by_id = page
    labels = {'tok-input': 'input',
              'tok-recon': 'reconstruction (all sub-codebooks)',
              'tok-branch-0': 'sub-codebook 0 alone',
              'tok-branch-1': 'sub-codebook 1 alone',
              'tok-codes-0': 'code map 0', 'tok-codes-1': 'code map 1',
              'gen-out-0': 'FAR on FQ-2 codes', 'gen-out-1': 'AR on VQ codes'}
    for elem_id, label in labels.items():
        component = by_id[elem_id]
        assert isinstance(component, gradio.Image), elem_id
        assert component.label == label, elem_id
        assert component.interactive is False, elem_id
        assert component.format == 'png', elem_id


@pytest.mark.parametrize('elem_id, label, low, high, value, step', [
    ('gen-num', 'samples', 1, 16, 8, 1),
    ('gen-cfg', 'CFG scale (1: no guidance)', 0, 8, 3.0, 0.5),
    ('gen-temperature', 'temperature (0: argmax)', 0, 2, 1.0, 0.05),
    ('gen-top-p', 'top-p', 0.05, 1, 1.0, 0.05),
])
def test_generation_sliders(page, elem_id, label, low, high, value, step):
    slider = page[1][elem_id]
    assert isinstance(slider, gradio.Slider) and slider.label == label
    assert (slider.minimum, slider.maximum) == (low, high)
    assert slider.value == value and slider.step == step


def test_generation_numbers_class_and_button(page):
    _, by_id = page
    for elem_id, label in [('gen-top-k', 'top-k (0: all codes)'),
                           ('gen-seed', 'seed')]:
        number = by_id[elem_id]
        assert isinstance(number, gradio.Number) and number.label == label
        assert (number.value, number.precision, number.minimum) == (0, 0, 0)
    cls = by_id['gen-class']
    assert isinstance(cls, gradio.Dropdown)
    assert cls.label == 'Fashion-MNIST class'
    assert [c for c, _ in cls.choices] == [
        'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal',
        'Shirt', 'Sneaker', 'Bag', 'Ankle boot']
    assert cls.value == 'Trouser'
    button = by_id['gen-run']
    assert isinstance(button, gradio.Button)
    assert (button.value, button.variant) == ('Sample', 'primary')


def test_events_wire_the_callbacks(page, monkeypatch):
    demo, _ = page

    def names(blocks):
        return [b.elem_id for b in blocks]

    events = []
    for fn in demo.fns.values():
        (target, event), = fn.targets
        where = demo.blocks[target] if target in demo.blocks else demo
        events.append(('page' if where is demo else where.elem_id, event,
                       names(fn.inputs), names(fn.outputs), fn.fn))
    run = app.run_tokenizer
    gen_inputs = ['gen-class', 'gen-num', 'gen-cfg', 'gen-temperature',
                  'gen-top-k', 'gen-top-p', 'gen-seed']
    assert [e[:4] for e in events] == [
        ('tok-run', 'click', TOKENIZER_INPUTS, TOKENIZER_OUTPUTS),
        ('tok-upload', 'upload', TOKENIZER_INPUTS, TOKENIZER_OUTPUTS),
        ('tok-name', 'change', TOKENIZER_INPUTS, TOKENIZER_OUTPUTS),
        ('tok-photo', 'change', ['tok-name', 'tok-photo'], TOKENIZER_OUTPUTS),
        ('gen-run', 'click', gen_inputs,
         ['gen-out-0', 'gen-out-1', 'gen-settings']),
        ('page', 'load', TOKENIZER_INPUTS, TOKENIZER_OUTPUTS)]
    assert [e[4] for e in events if e[4] is not events[3][4]] == [
        run, run, run, app.run_generation, run]
    # picking a bundled photo tokenizes it, not the last upload
    calls = []
    monkeypatch.setattr(app, 'run_tokenizer',
                        lambda *args: calls.append(args) or ['shown'])
    assert events[3][4](FQ2, 'coffee') == ['shown']
    assert calls == [(FQ2, 'coffee', None)]


# --------------------------------------------------- small functions
def test_theme_uses_system_fonts_only():
    theme = app.theme()
    assert isinstance(theme, gradio.themes.Base)
    assert theme.font == 'ui-sans-serif, system-ui, sans-serif'
    assert theme.font_mono == 'ui-monospace, monospace'


def test_image_sends_png_so_the_pixels_are_exact():
    array = np.random.default_rng(0).integers(0, 256, (5, 7, 3), np.uint8)
    update = app.image(value=array, label='here', visible=False)
    assert update.format == 'png' and update.value['path'].endswith('.png')
    assert np.array_equal(pixels(update), array)
    assert update.label == 'here' and update.visible is False


def test_error_message_for_a_refused_input_and_for_a_fault(caplog):
    refused = core.DemoInputError('the file is empty.')
    assert app.error_message(refused) == ('**Cannot use this input.** the '
                                          'file is empty.')
    assert not caplog.records
    with caplog.at_level(logging.ERROR, logger='fqzoo.demo'):
        try:
            raise KeyError('codes')
        except KeyError as err:
            text = app.error_message(err)
    assert text == ("**Something went wrong** (KeyError: 'codes'). "
                    'The server log has the details.')
    record, = caplog.records
    assert (record.name, record.levelname) == ('fqzoo.demo', 'ERROR')
    assert record.getMessage() == 'demo error'
    assert record.exc_info[0] is KeyError


def test_fmnist_examples_first_image_of_each_class_in_the_first_200(
        monkeypatch):
    labels = [3] * 250
    labels[2], labels[199], labels[200] = 1, 7, 9   # 9 only after 200
    monkeypatch.setattr(app, 'fmnist_test_set', lambda: FakeDataset(labels))
    assert app.fmnist_examples() == [
        'Fashion-MNIST test image 2 (Trouser)',
        'Fashion-MNIST test image 0 (Dress)',
        'Fashion-MNIST test image 199 (Sneaker)']
    monkeypatch.setattr(app, 'fmnist_test_set',
                        lambda: FakeDataset([4, 0, 4]))
    assert app.fmnist_examples() == ['Fashion-MNIST test image 1 (T-shirt/top)',
                                     'Fashion-MNIST test image 0 (Coat)']
    monkeypatch.setattr(app, 'fmnist_test_set', lambda: None)
    assert app.fmnist_examples() == []


def test_source_image_of_an_example_and_of_a_photo(monkeypatch):
    monkeypatch.setattr(app, 'fmnist_test_set',
                        lambda: FakeDataset([0, 1, 2, 3]))
    picture = app.source_image('Fashion-MNIST test image 2 (Pullover)')
    assert picture.mode == 'RGB' and picture.size == (28, 28)
    assert (np.asarray(picture) == 20).all()
    photo = app.source_image('coffee')
    assert np.array_equal(np.asarray(photo),
                          np.asarray(core.bundled_photo('coffee')))


# ------------------------------------------------------- the callbacks
@pytest.fixture
def fake_core(monkeypatch):
    """core's model functions replaced by recorders: what they were given
    lands in the returned dict."""
    seen = {'tokenize': [], 'read_upload': [], 'bundled_photo': [],
            'sample': []}

    def tokenize(model, x):
        seen['tokenize'].append((model, x))
        return seen['result']

    def read_upload(path):
        seen['read_upload'].append(path)
        return f'upload {path}'

    def bundled_photo(name):
        seen['bundled_photo'].append(name)
        return f'photo {name}'

    def sample(generator, tokenizer, settings, progress):
        seen['sample'].append((generator, tokenizer, settings))
        progress(1, 4)
        progress(4, 4)
        shade = 100 if 'far' in generator else 200
        return np.stack([np.full((2, 2, 3), shade + i, np.uint8)
                         for i in range(settings.num)])

    monkeypatch.setattr(core, 'shipped_model', lambda name: f'model {name}')
    monkeypatch.setattr(core, 'to_input', lambda *args: args)
    monkeypatch.setattr(core, 'tokenize', tokenize)
    monkeypatch.setattr(core, 'read_upload', read_upload)
    monkeypatch.setattr(core, 'bundled_photo', bundled_photo)
    monkeypatch.setattr(core, 'sample', sample)
    return seen


def two_codebooks() -> core.TokenizerResult:
    return core.TokenizerResult(
        original=block(10), reconstruction=block(20),
        branches=[block(30), block(40)], code_maps=[block(50), block(60)],
        psnr=31.234, grid=(2, 2), codebook_sizes=[4, 4], seconds=0.25)


def test_run_tokenizer_shows_every_branch_of_a_photo(fake_core):
    fake_core['result'] = two_codebooks()
    out = app.run_tokenizer(FQ2, 'coffee', None)
    assert fake_core['bundled_photo'] == ['coffee']
    assert fake_core['read_upload'] == []
    assert fake_core['tokenize'] == [('model fqzoo-fmnist-fq2',
                                      ('photo coffee', 'gray', 32))]
    assert out[0] == (f'**{FQ2}** on coffee: PSNR 31.23 dB | 2 x 2 positions '
                      'x 2 sub-codebook(s) (4 x 4 codes) = 8 tokens per '
                      'image, 16 bits | 0.25 s')
    assert len(out) == 7
    for update, value in zip(out[1:], (10, 20, 30, 40, 50, 60)):
        assert update.format == 'png' and update.visible is True
        assert np.array_equal(pixels(update), block(value))
    assert [o.label for o in out[3:]] == [
        'sub-codebook 0 alone (others at their mean)',
        'sub-codebook 1 alone (others at their mean)',
        'code map 0 (4 codes)', 'code map 1 (4 codes)']


def test_run_tokenizer_one_codebook_hides_the_unused_images(fake_core):
    fake_core['result'] = core.TokenizerResult(
        original=block(10), reconstruction=block(20), branches=[],
        code_maps=[block(50)], psnr=28.0, grid=(1, 2),
        codebook_sizes=[512], seconds=1.0)
    out = app.run_tokenizer(VQ, 'astronaut', None)
    assert fake_core['tokenize'] == [('model fqzoo-fmnist-vq',
                                      ('photo astronaut', 'gray', 32))]
    assert out[0].startswith(f'**{VQ}** on astronaut: PSNR 28.00 dB')
    assert [o.visible for o in out[3:]] == [False, False, True, False]
    assert [o.value for o in out[3:5]] + [out[6].value] == [None] * 3
    assert np.array_equal(pixels(out[5]), block(50))
    assert [o.label for o in out[5:]] == ['code map 0 (512 codes)',
                                          'code map 1 (512 codes)']


def test_run_tokenizer_takes_the_upload_over_the_photo(fake_core, tmp_path):
    fake_core['result'] = two_codebooks()
    path = str(tmp_path / 'cat.png')
    out = app.run_tokenizer('Photos FQ-2 (2 x 512 codes)', 'coffee', path)
    assert fake_core['read_upload'] == [path]
    assert fake_core['bundled_photo'] == []
    assert fake_core['tokenize'] == [('model fqzoo-photos-fq2',
                                      (f'upload {path}', 'rgb', 256))]
    assert out[0].startswith('**Photos FQ-2 (2 x 512 codes)** on the upload '
                             'cat.png: PSNR 31.23 dB')


def test_run_tokenizer_errors_become_a_message_and_blank_images(
        fake_core, monkeypatch):
    def refuse(path):
        raise core.DemoInputError(f'{path} is not an image.')

    monkeypatch.setattr(core, 'read_upload', refuse)
    out = app.run_tokenizer(FQ2, 'coffee', 'notes.txt')
    assert out == ['**Cannot use this input.** notes.txt is not an image.'] \
        + [None] * 6
    out = app.run_tokenizer('Nope', 'coffee', None)
    assert out == ["**Something went wrong** (KeyError: 'Nope'). The server "
                   'log has the details.'] + [None] * 6


def test_run_generation_settings_progress_grids_and_text(fake_core):
    ticks = []
    out = app.run_generation('Dress', 2.0, 2.5, 0.7, 5.0, 0.9, 4.0,
                             progress=lambda f, desc: ticks.append((f, desc)))
    settings = core.SampleSettings(class_index=3, num=2, cfg_scale=2.5,
                                   temperature=0.7, top_k=5, top_p=0.9,
                                   seed=4)
    assert fake_core['sample'] == [
        ('model fqzoo-fmnist-far', 'model fqzoo-fmnist-fq2', settings),
        ('model fqzoo-fmnist-ar', 'model fqzoo-fmnist-vq', settings)]
    given = fake_core['sample'][0][2]
    assert [type(getattr(given, f)) for f in
            ('num', 'top_k', 'seed', 'cfg_scale', 'temperature', 'top_p')] \
        == [int, int, int, float, float, float]
    far = 'FAR on FQ-2 codes: drawing tokens, position'
    ar = 'AR on VQ codes: drawing tokens, position'
    assert ticks == [((1, 8), f'{far} 1 of 4'), ((4, 8), f'{far} 4 of 4'),
                     ((5, 8), f'{ar} 1 of 4'), ((8, 8), f'{ar} 4 of 4')]
    assert len(out) == 3
    for grid, shade in zip(out[:2], (100, 200)):
        expected = core.tile([np.full((2, 2, 3), shade, np.uint8),
                              np.full((2, 2, 3), shade + 1, np.uint8)])
        assert np.array_equal(grid, expected)
    code = {name: settings.reproduce(*name.split())
            for name in ('fqzoo-fmnist-far fqzoo-fmnist-fq2',
                         'fqzoo-fmnist-ar fqzoo-fmnist-vq')}
    assert out[2] == (
        'Class 3 (Dress), 2 samples, CFG scale 2.5, temperature 0.7, '
        'top-k 5, top-p 0.9, seeds 4-5 (sample i: seed + i, left to right, '
        'top to bottom).\n\n'
        '**FAR on FQ-2 codes** (`fqzoo-fmnist-far` + `fqzoo-fmnist-fq2`):'
        '\n\n```python\n' + code['fqzoo-fmnist-far fqzoo-fmnist-fq2']
        + '\n```\n\n'
        '**AR on VQ codes** (`fqzoo-fmnist-ar` + `fqzoo-fmnist-vq`):'
        '\n\n```python\n' + code['fqzoo-fmnist-ar fqzoo-fmnist-vq']
        + '\n```')


def test_run_generation_error_becomes_a_message(fake_core):
    out = app.run_generation('Dress', 2, 2.0, 1.0, 0, 1.0, -1,
                             progress=lambda *a, **k: None)
    assert out == [None, None, '**Cannot use this input.** seed must be >= 0']
    assert fake_core['sample'] == []


# --------------------------------------------------- command line, launch
def test_parse_args_defaults_and_values():
    args = app.parse_args([])
    assert (args.host, args.port, args.threads) == ('127.0.0.1', 7860, 1)
    args = app.parse_args(['--host', '0.0.0.0', '--port', '8001',
                           '--threads', '3'])
    assert (args.host, args.port, args.threads) == ('0.0.0.0', 8001, 3)


def test_parse_args_help_text(capsys, monkeypatch):
    monkeypatch.setenv('COLUMNS', '200')
    with pytest.raises(SystemExit):
        app.parse_args(['--help'])
    out = capsys.readouterr().out
    assert 'The fqzoo demo page' in out.splitlines()
    text = ' '.join(out.split())
    assert ('--threads THREADS intra-op threads of torch (default 1: these '
            'small models run 4-5x slower with 2 threads on a busy 2-core '
            'machine, docs/benchmarks.md)') in text
    assert '--host HOST' in text and '--port PORT' in text


def test_main_loads_every_model_then_launches_offline(monkeypatch):
    seen = {'loaded': [], 'threads': [], 'logging': [], 'launch': []}

    class Page:
        def queue(self):
            return self

        def launch(self, **kwargs):
            seen['launch'].append(kwargs)

    monkeypatch.setattr(core, 'shipped_model', seen['loaded'].append)
    monkeypatch.setattr(torch, 'set_num_threads', seen['threads'].append)
    monkeypatch.setattr(logging, 'basicConfig',
                        lambda **kw: seen['logging'].append(kw))
    monkeypatch.setattr(app, 'build_demo', Page)
    app.main(['--host', '0.0.0.0', '--port', '8001', '--threads', '3'])
    assert seen['loaded'] == ['fqzoo-photos-fq2', 'fqzoo-fmnist-fq2',
                              'fqzoo-fmnist-vq', 'fqzoo-fmnist-far',
                              'fqzoo-fmnist-ar']
    assert seen['threads'] == [3]
    assert seen['logging'] == [{'level': logging.INFO}]
    launch, = seen['launch']
    theme = launch.pop('theme')
    assert isinstance(theme, gradio.themes.Base)
    assert theme.font == 'ui-sans-serif, system-ui, sans-serif'
    assert launch == {'server_name': '0.0.0.0', 'server_port': 8001,
                      'ssr_mode': False, 'footer_links': [],
                      'max_file_size': 80 * 1024 * 1024,
                      'show_error': False}
