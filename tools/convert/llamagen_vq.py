"""Convert LlamaGen's released VQ tokenizers (FoundationVision/LlamaGen:
``vq_ds16_c2i.pt``, ``vq_ds8_c2i.pt``; peizesun/llamagen_t2i:
``vq_ds16_t2i.pt``; Sun et al., 2024, arXiv 2406.06525) into fqzoo
tokenizers (``VQGANEncoder``, one l2-normalised 16384 x 8 codebook,
``VQGANDecoder``).

Every size (widths per level, hence the downsample factor; codebook) is
read from the shapes. Writes ``DST`` (tensors and plain values; ``meta``
records the source and the token layout, grids at ``--image-size``,
default 256) and a standalone inference config ``--out-config``, equal in
its model to ``configs/llamagen/vq_ds16_c2i.py`` / ``vq_ds8_c2i.py`` for
the released files: ``fqzoo.apis.init_tokenizer(CFG, DST)``. The key map is
in :mod:`fqzoo.converters.llamagen_vq`.

Usage::

    python tools/convert/llamagen_vq.py vq_ds16_c2i.pt \\
        checkpoints/llamagen_vq_ds16_c2i.pth \\
        --out-config checkpoints/llamagen_vq_ds16_c2i.py
"""
import sys
from pathlib import Path
from typing import List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from convert_cli import converter_parser, run  # noqa: E402

from fqzoo.errors import exit_on_input_error  # noqa: E402


def main(argv: Optional[List[str]] = None) -> dict:
    parser = converter_parser(__doc__.split('\n\n')[0], ['tokenizer'])
    return run(parser, 'llamagen_vq', argv)


if __name__ == '__main__':
    with exit_on_input_error():
        main()
