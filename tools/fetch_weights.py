"""Download every weight file a config needs, for an offline machine.

Run it where the network is (a login node): the files come through the
libraries' own hubs (timm, open_clip, torch hub for torchvision and
torch-fidelity) into OUT, with OUT/<config name>_offline.py, a config whose
``_base_`` is CONFIG and whose weight paths point into OUT. Train on the
offline machine with that config. Files already in OUT are kept.

Examples:
    python tools/fetch_weights.py configs/fq/fq2_dino_clip.py --out weights/
    python tools/train.py weights/fq2_dino_clip_offline.py --dry-run
    python tools/train.py weights/fq2_dino_clip_offline.py
"""
import argparse

from mmengine.config import Config

from fqzoo.errors import exit_on_input_error
from fqzoo.utils.offline import fetch_weights
from fqzoo.utils.preflight import check_config, checks_summary


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Download the weight files of a config and write a '
        'config that reads them from the download folder')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--out', required=True,
                        help='folder for the weight files and the '
                        '<config name>_offline.py config')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    override = fetch_weights(args.config, args.out)
    print(f'\nwrote {override}')
    checks = check_config(Config.fromfile(str(override)), online=False)
    print(checks_summary(checks))
    if not all(check.ok for check in checks):
        print('\nThe entries marked missing are not weight files this tool '
              'can download (datasets, pip packages): get them as the '
              'message of `tools/train.py CONFIG --dry-run` says.')


if __name__ == '__main__':
    with exit_on_input_error():
        main()
