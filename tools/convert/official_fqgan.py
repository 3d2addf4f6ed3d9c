"""Convert released FQGAN tokenizer checkpoints (showlab/FQGAN:
``fqgan_dual_ds16.pt``, ``fqgan_triple_ds16.pt`` and the ds8 variants; Bai
et al., 2024, arXiv 2411.16681) into fqzoo tokenizers.

Dual or Triple is read from the keys, the downsample factor from the
encoder, so the model config defaults to
``configs/_base_/models/fqgan_<variant>_ds<N>.py`` (``--config`` maps onto
another). Writes ``DST`` (tensors and plain values; ``meta`` records the
source and the token layout) and a standalone inference config
``--out-config``: ``fqzoo.apis.init_tokenizer(CFG, DST)``. The key map is
in :mod:`fqzoo.converters.fqgan`.

Usage::

    python tools/convert/official_fqgan.py fqgan_dual_ds16.pt \\
        checkpoints/fqgan_dual_ds16.pth \\
        --out-config checkpoints/fqgan_dual_ds16.py
"""
import sys
from pathlib import Path
from typing import List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from convert_cli import converter_parser, run  # noqa: E402

from fqzoo.errors import exit_on_input_error  # noqa: E402


def main(argv: Optional[List[str]] = None) -> dict:
    parser = converter_parser(__doc__.split('\n\n')[0], ['tokenizer'])
    parser.add_argument('--config', type=Path, default=None,
                        help='fqzoo config of the model (default: '
                        'configs/_base_/models/fqgan_<variant>_ds<N>.py)')
    return run(parser, 'fqgan', argv)


if __name__ == '__main__':
    with exit_on_input_error():
        main()
