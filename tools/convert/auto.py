"""Convert any released checkpoint fqzoo knows (FQGAN and LlamaGen VQ
tokenizers, LlamaGen GPTs, FAR), its family detected from the keys.

The same conversion as the family's own tool (``official_fqgan.py``,
``llamagen_vq.py``, ``llamagen_gpt.py``, ``official_far.py``), with all
their flags; those the detected family does not use are ignored.

Usage::

    python tools/convert/auto.py vq_ds16_c2i.pt checkpoints/vq_ds16.pth \\
        --out-config checkpoints/vq_ds16.py
"""
import sys
from pathlib import Path
from typing import List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from convert_cli import converter_parser, run  # noqa: E402

from fqzoo.errors import exit_on_input_error  # noqa: E402


def main(argv: Optional[List[str]] = None) -> dict:
    parser = converter_parser(__doc__.split('\n\n')[0],
                              ['tokenizer', 'generator'])
    parser.add_argument('--config', type=Path, default=None,
                        help='FQGAN only: fqzoo config of the model')
    return run(parser, None, argv)


if __name__ == '__main__':
    with exit_on_input_error():
        main()
