"""Convert LlamaGen's released class-conditional GPT checkpoints
(FoundationVision/LlamaGen: ``c2i_B_256.pt``, ``c2i_L_384.pt``,
``c2i_XL_384.pt`` ...; Sun et al., 2024, arXiv 2406.06525) into an fqzoo
``AutoregressiveGenerator`` (G = 1, ``ParallelLinearHead``).

Writes the fqzoo checkpoint ``DST`` (tensors and plain values; ``meta``
records the source and the token layout) and a standalone config
``--out-config`` so that ``fqzoo.apis.init_generator(CFG, DST)`` computes
the released model's logits. Depth, width, vocabulary, classes, SwiGLU
width and key/value heads are read from the shapes; the heads default to
the released size of the width (768: 12, 1024: 16, 1280: 20, 1536: 24,
2560: 40) and the token grid to 16 (256 px at downsampling 16: pass 24 for
the 384 px models). The key map is in :mod:`fqzoo.converters.transformer`.

Usage::

    python tools/convert/llamagen_gpt.py c2i_L_384.pt \\
        checkpoints/llamagen_c2i_l_384.pth \\
        --out-config checkpoints/llamagen_c2i_l_384.py --grid-size 24
"""
import sys
from pathlib import Path
from typing import List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from convert_cli import converter_parser, run  # noqa: E402

from fqzoo.errors import exit_on_input_error  # noqa: E402


def main(argv: Optional[List[str]] = None) -> dict:
    parser = converter_parser(__doc__.split('\n\n')[0], ['generator'])
    return run(parser, 'llamagen', argv)


if __name__ == '__main__':
    with exit_on_input_error():
        main()
