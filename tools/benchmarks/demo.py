"""How fast the demo page answers: start-up, eight samples, one photo.

Starts ``python -m fqzoo.demo.app`` on a free port, times it until the page
answers, then calls the page's own endpoints through ``gradio_client`` (what
the browser's buttons call: the time a user waits, less the browser's
drawing) and, in this process, the functions behind them::

    python tools/benchmarks/demo.py --repeat 3 --threads 1

Prints the load average before and after (the figures mean little on a
busy machine: docs/benchmarks.md quotes them with theirs).
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def start_app(threads: int) -> tuple:
    """The running app, its URL and the seconds until it answered."""
    port = free_port()
    url = f'http://127.0.0.1:{port}/'
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, '-m', 'fqzoo.demo.app', '--port', str(port),
         '--threads', str(threads)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(REPO)))
    while True:
        if proc.poll() is not None:
            raise SystemExit(f'the app exited ({proc.returncode})')
        try:
            if urllib.request.urlopen(url, timeout=5).status == 200:
                return proc, url, time.perf_counter() - start
        except OSError:
            time.sleep(0.1)


def timed(fn, repeat: int) -> list:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def show(what: str, times: list) -> None:
    print(f'{what:58s} median {statistics.median(times):6.2f} s  '
          f'(min {min(times):.2f}, max {max(times):.2f}, n={len(times)})')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--threads', type=int, default=1,
                        help='torch intra-op threads, of the app (its '
                        '--threads) and of this process')
    parser.add_argument('--num', type=int, default=8, help='samples')
    args = parser.parse_args()
    print(f'load average before: {os.getloadavg()}')
    starts, procs = [], []
    for _ in range(args.repeat):
        proc, url, seconds = start_app(args.threads)
        starts.append(seconds)
        procs.append(proc)
        if len(procs) < args.repeat:
            proc.terminate()
            proc.wait()
    show('start-up: process start to the page answering', starts)
    from gradio_client import Client
    client = Client(url, verbose=False)
    try:
        gen = timed(lambda: client.predict(
            'Sneaker', args.num, 3.0, 1.0, 0, 1.0, 0,
            api_name='/run_generation'), args.repeat)
        show(f'page: {args.num} FAR + {args.num} AR samples (cfg 3)', gen)
        tok = timed(lambda: client.predict(
            'Photos FQ-2 (2 x 512 codes)', 'astronaut', None,
            api_name='/run_tokenizer'), args.repeat)
        show('page: tokenizer view, one photo at 256x256', tok)
    finally:
        procs[-1].terminate()
        procs[-1].wait()

    import torch
    torch.set_num_threads(args.threads)
    from fqzoo.demo import core
    settings = core.SampleSettings(class_index=7, num=args.num)
    for label, (gen_name, tok_name) in core.GENERATORS.items():
        model, tok = core.shipped_model(gen_name), core.shipped_model(tok_name)
        show(f'in process: {args.num} samples, {label}',
             timed(lambda m=model, t=tok: core.sample(m, t, settings),
                   args.repeat))
    photo = core.to_input(core.bundled_photo('astronaut'), 'rgb', 256)
    tok = core.shipped_model('fqzoo-photos-fq2')
    show('in process: tokenize one photo at 256x256',
         timed(lambda: core.tokenize(tok, photo), args.repeat))
    print(f'load average after: {os.getloadavg()}')


if __name__ == '__main__':
    main()
