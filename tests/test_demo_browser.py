"""The demo page in a real browser: the app (``python -m fqzoo.demo.app``,
what ``make demo`` runs) on a free localhost port, opened by headless
Chromium (Debian's ``chromium`` and ``chromium-driver``) through Selenium.

It uploads a photo and checks the reconstruction and branch images that
the page shows (decoded from the page, not blank, the PSNR the page prints
matches the page's own input and reconstruction), refuses three bad
uploads with a message, samples one class (ankle boots) from FAR and AR and has
the shipped Fashion-MNIST classifier name the samples in the page's grids, and
checks that the page asked nothing of any host but the app's.

``FQZOO_DEMO_SCREENSHOTS=docs/images`` saves a screenshot of each view
there (``demo_tokenizer.png``, ``demo_generation.png``). Skips, saying why,
where Gradio, Selenium, Chromium or its driver is missing
(``FQZOO_CHROMIUM`` / ``FQZOO_CHROMEDRIVER`` name other binaries).
"""
import base64
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch
from conftest import REPO
from PIL import Image

pytest.importorskip('gradio', reason='Gradio is not installed: `make demo` '
                    "(or pip install -e '.[demo]') installs it")
pytest.importorskip('selenium', reason='Selenium is not installed: '
                    "pip install -e '.[demo]'")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

CHROMIUM = os.environ.get('FQZOO_CHROMIUM') or shutil.which('chromium') \
    or shutil.which('chromium-browser')
DRIVER = os.environ.get('FQZOO_CHROMEDRIVER') or shutil.which('chromedriver')
if not (CHROMIUM and DRIVER):
    pytest.skip('headless Chromium is not installed (apt-get install '
                'chromium chromium-driver; .ci/run installs them where it '
                f'can): chromium {CHROMIUM}, chromedriver {DRIVER}',
                allow_module_level=True)

SCREENSHOTS = os.environ.get('FQZOO_DEMO_SCREENSHOTS')
START_TIMEOUT = 300  # s: torch, Gradio and five models on a loaded CPU
STEP_TIMEOUT = 180
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def wait_for(check, timeout: float, what: str):
    """``check()``'s first truthy value, polled every 0.1 s."""
    end = time.time() + timeout
    while time.time() < end:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f'{what}: not within {timeout} s')


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    """The demo app on a free port; its URL."""
    port = free_port()
    log = tmp_path_factory.mktemp('demo') / 'app.log'
    with open(log, 'w') as out:
        proc = subprocess.Popen(
            [sys.executable, '-m', 'fqzoo.demo.app', '--port', str(port)],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONPATH=str(REPO)))
    url = f'http://127.0.0.1:{port}/'

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f'the demo app exited ({proc.returncode}):\n'
                               + log.read_text()[-3000:])
        try:
            return urllib.request.urlopen(url, timeout=5).status == 200
        except OSError:
            return False

    try:
        wait_for(up, START_TIMEOUT, 'the demo app answering')
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp('chromium-profile')
    for flag in ('--headless', '--no-sandbox', '--disable-gpu',
                 '--disable-background-networking',
                 '--disable-component-update', '--disable-sync',
                 '--no-first-run', f'--user-data-dir={profile}',
                 '--window-size=1400,1100'):
        options.add_argument(flag)
    options.set_capability('goog:loggingPrefs', {'performance': 'ALL'})
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


IMAGE_PIXELS = """
const img = document.querySelector(arguments[0]);
if (!img || !img.complete || !img.naturalWidth) return null;
const canvas = document.createElement('canvas');
canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
canvas.getContext('2d').drawImage(img, 0, 0);
return canvas.toDataURL('image/png');
"""


def page_image(driver, elem_id: str) -> np.ndarray:
    """The image the page shows in component ``elem_id``, decoded from the
    page (uint8 ``[H, W, 3]``)."""
    data = wait_for(lambda: driver.execute_script(
        IMAGE_PIXELS, f'#{elem_id} img'), STEP_TIMEOUT, f'#{elem_id} image')
    raw = base64.b64decode(data.split(',', 1)[1])
    return np.asarray(Image.open(io.BytesIO(raw)).convert('RGB'))


def text_of(driver, elem_id: str) -> str:
    found = driver.find_elements(By.ID, elem_id)
    return found[0].text if found else ''


def upload(driver, path: Path) -> None:
    """Put ``path`` into the upload box (clearing a former upload)."""
    inputs = driver.find_elements(By.CSS_SELECTOR,
                                  '#tok-upload input[type=file]')
    if not inputs:
        driver.find_element(By.CSS_SELECTOR,
                            '#tok-upload button[aria-label=Clear]').click()
        inputs = wait_for(lambda: driver.find_elements(
            By.CSS_SELECTOR, '#tok-upload input[type=file]'), STEP_TIMEOUT,
            'the upload box')
    inputs[0].send_keys(str(path))


def status_for(driver, name: str) -> str:
    """The tokenizer view's status once it names ``name``."""
    return wait_for(lambda: name in text_of(driver, 'tok-status')
                    and text_of(driver, 'tok-status'), STEP_TIMEOUT,
                    f'the status naming {name}')


def screenshot(driver, name: str, height: int) -> None:
    """The window, ``height`` pixels tall, as ``$FQZOO_DEMO_SCREENSHOTS/
    name``."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        driver.set_window_size(1400, height)
        time.sleep(1)  # let the page lay itself out again
        driver.save_screenshot(str(Path(SCREENSHOTS) / name))
        driver.set_window_size(1400, 1100)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return 10 * np.log10(255 ** 2 / mse)


def open_page(driver, url: str) -> None:
    driver.get(url)
    status_for(driver, 'astronaut')  # the first photo, tokenized on load


def test_tokenizer_view_shows_reconstruction_and_branches(server, browser,
                                                          tmp_path):
    from fqzoo.demo.core import bundled_photo
    open_page(browser, server)
    photo = tmp_path / 'flower.png'
    bundled_photo('flower').save(photo)
    upload(browser, photo)
    status = status_for(browser, 'the upload flower.png')
    assert 'Photos FQ-2' in status and '8192 tokens per image' in status
    shown = float(re.search(r'PSNR ([\d.]+) dB', status).group(1))
    assert shown > 20, status  # a trained tokenizer, not a random one
    original = page_image(browser, 'tok-input')
    recon = page_image(browser, 'tok-recon')
    assert original.shape == recon.shape == (256, 256, 3)
    # the PSNR the page prints is that of the images it shows
    assert psnr(recon, original) == pytest.approx(shown, abs=0.05)
    for elem_id in ('tok-recon', 'tok-branch-0', 'tok-branch-1',
                    'tok-codes-0', 'tok-codes-1'):
        image = page_image(browser, elem_id)
        assert image.std() > 10, f'{elem_id} is blank'
    # each branch alone is a worse picture than both, and they differ
    branch0 = page_image(browser, 'tok-branch-0')
    branch1 = page_image(browser, 'tok-branch-1')
    assert np.abs(branch0.astype(int) - branch1).mean() > 2
    for branch in (branch0, branch1):
        assert psnr(branch, original) < shown - 1
    screenshot(browser, 'demo_tokenizer.png', 1250)
    assert 'Traceback' not in browser.page_source


def test_bad_uploads_get_a_message_in_the_page(server, browser, tmp_path):
    open_page(browser, server)
    notes = tmp_path / 'notes.txt'
    notes.write_text('not a picture')
    pixel = tmp_path / 'pixel.png'
    Image.new('RGB', (1, 1), (200, 30, 30)).save(pixel)
    huge = tmp_path / 'huge.png'
    Image.new('L', (6000, 6000)).save(huge)  # 36 MP, a few kB of PNG
    for path, words in ((notes, 'is not an image'),
                        (pixel, '1 x 1 pixels: too small'),
                        (huge, '6000 x 6000 pixels: too large')):
        upload(browser, path)
        status = status_for(browser, path.name)
        assert status.startswith('Cannot use this input.'), status
        assert words in status
        assert 'Traceback' not in browser.page_source


def choose(driver, elem_id: str, option: str) -> None:
    """Pick ``option`` in a Gradio dropdown."""
    box = driver.find_element(By.CSS_SELECTOR, f'#{elem_id} input')
    box.click()
    box.send_keys(Keys.CONTROL, 'a')
    box.send_keys(option)
    box.send_keys(Keys.ENTER)
    wait_for(lambda: box.get_attribute('value') == option, STEP_TIMEOUT,
             f'{elem_id} set to {option}')


def grid_cells(grid: np.ndarray, count: int, columns: int = 4,
               scale: int = 3, pad: int = 2, side: int = 32) -> np.ndarray:
    """The ``count`` samples of a :func:`fqzoo.demo.core.tile` grid,
    uint8 ``[N, side, side, 3]``."""
    cell = side * scale
    cells = []
    for i in range(count):
        r, c = divmod(i, columns)
        top, left = pad + r * (cell + pad), pad + c * (cell + pad)
        cells.append(grid[top:top + cell:scale, left:left + cell:scale])
    return np.stack(cells)


def test_generation_view_samples_the_chosen_class(server, browser):
    from fqzoo.evaluation.fmnist_classifier import (
        load_fmnist_classifier,
        predict,
        uint8_to_inputs,
    )
    open_page(browser, server)
    tab = [t for t in browser.find_elements(By.CSS_SELECTOR,
                                            'button[role=tab]')
           if t.text == 'Generation']
    tab[0].click()
    choose(browser, 'gen-class', 'Ankle boot')
    browser.find_element(By.ID, 'gen-run').click()
    seen_progress = []

    def done() -> bool:
        if 'drawing tokens' in browser.page_source:
            seen_progress.append(True)
        return 'seeds 0-7' in text_of(browser, 'gen-settings')

    wait_for(done, STEP_TIMEOUT, 'the samples')
    assert seen_progress, 'no progress bar while the tokens were drawn'
    settings = text_of(browser, 'gen-settings')
    assert 'Class 9 (Ankle boot), 8 samples, CFG scale 3' in settings
    assert "get_model('fqzoo-fmnist-far')" in settings
    classifier = load_fmnist_classifier()
    for elem_id in ('gen-out-0', 'gen-out-1'):
        grid = page_image(browser, elem_id)
        samples = grid_cells(grid, 8)
        assert all(s.std() > 10 for s in samples), f'{elem_id}: blank'
        with torch.no_grad():
            logits, _ = predict(classifier, uint8_to_inputs(samples))
        hits = int((logits.argmax(1) == 9).sum())
        assert hits >= 6, f'{elem_id}: {hits} of 8 samples are ankle boots'
    screenshot(browser, 'demo_generation.png', 1000)


def test_the_page_asks_nothing_of_other_hosts(server, browser):
    open_page(browser, server)
    hosts = set()
    for entry in browser.get_log('performance'):
        message = json.loads(entry['message'])['message']
        if message['method'] == 'Network.requestWillBeSent':
            url = urlparse(message['params']['request']['url'])
            if url.scheme in ('http', 'https', 'ws', 'wss'):
                hosts.add(url.hostname)
    assert hosts == {'127.0.0.1'}, hosts
