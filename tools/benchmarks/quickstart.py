"""Time `make quickstart` and hold its results against the goals.

Runs ``tools/quickstart.py CONFIG --work-dir WORK_DIR`` (unless
``--no-train``: then only reads ``WORK_DIR/metrics.json`` of an earlier
run), records the wall time and the load average before and after, and
prints each goal with the measured value:

- held-out patch PSNR >= 24 dB;
- codebook usage >= 80% on every sub-codebook;
- whole held-out photos at 256 px: mean PSNR >= 23 dB, mean colour within
  6/255 of the original (``whole/colour_shift``, the mean over the photos of
  the largest per-channel difference);
- at most 15 minutes on 2 cores.

Example::

    python tools/benchmarks/quickstart.py --work-dir work_dirs/quickstart_bench
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[2]
CONFIG = 'configs/quickstart/fq2_effnet_tiny_photos.py'


def goals(metrics: Dict[str, float],
          minutes: Optional[float]) -> List[Tuple[str, str, str, bool]]:
    """``(goal, target, measured, met)`` rows for one quickstart run."""
    usage = {k: v for k, v in metrics.items()
             if k.startswith('usage_') and k[6:].isdigit()}
    rows = [
        ('held-out patch PSNR', '>= 24 dB', f"{metrics['psnr']:.2f} dB",
         metrics['psnr'] >= 24),
        ('usage per sub-codebook', '>= 80%',
         ' / '.join(f'{v:.0%}' for _, v in sorted(usage.items())),
         bool(usage) and min(usage.values()) >= 0.8),
        ('whole photos, PSNR', '>= 23 dB', f"{metrics['whole/psnr']:.2f} dB",
         metrics['whole/psnr'] >= 23),
        ('whole photos, colour shift', '<= 6/255',
         f"{metrics['whole/colour_shift']:.1f}/255",
         metrics['whole/colour_shift'] <= 6),
    ]
    if minutes is not None:
        rows.append(('wall time', '<= 15 min', f'{minutes:.1f} min',
                     minutes <= 15))
    return rows


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument('--work-dir', default='work_dirs/quickstart_bench')
    parser.add_argument('--no-train', action='store_true',
                        help='only read WORK_DIR/metrics.json')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    work_dir = Path(args.work_dir)
    minutes = None
    if not args.no_train:
        load = os.getloadavg()
        start = time.perf_counter()
        subprocess.run([sys.executable, 'tools/quickstart.py', args.config,
                        '--work-dir', str(work_dir)], cwd=REPO, check=True)
        minutes = (time.perf_counter() - start) / 60
        print(f'\nload average before {load[0]:.2f}, after '
              f'{os.getloadavg()[0]:.2f} (1 min); {os.cpu_count()} CPUs')
    metrics = json.loads((work_dir / 'metrics.json').read_text())
    print('\n| goal | target | measured | met |\n| --- | --- | --- | --- |')
    for goal, target, measured, met in goals(metrics, minutes):
        print(f"| {goal} | {target} | {measured} | {'yes' if met else 'no'} |")


if __name__ == '__main__':
    main()
