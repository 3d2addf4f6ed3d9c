"""Convert checkpoints of FQGAN's released FAR training code
(showlab/FQGAN ``autoregressive/train/train_c2i_dual.py`` /
``train_c2i_triple.py``: FAR-B, FAR-L; Bai et al., 2024, arXiv 2411.16681)
into an fqzoo ``AutoregressiveGenerator`` (G = 2 or 3,
``FactorizedARHead``).

Writes the fqzoo checkpoint ``DST`` (tensors and plain values; ``meta``
records the source and the token layout) and a standalone config
``--out-config`` so that ``fqzoo.apis.init_generator(CFG, DST)`` computes
the released model's logits. Dual or Triple, depth, head depth, width,
vocabularies, classes, SwiGLU width and key/value heads are read from the
shapes; the heads default to the released size of the width (FAR-B 1024:
16, FAR-L 1280: 20) and the token grid to 16 (256 px at downsampling 16).
Released sub-token ``idx_1`` (``tok_embeddings_1``, ``output_1``: the
visual branch) is fqzoo sub-token 0, and so on. The key map is in
:mod:`fqzoo.converters.transformer`.

Usage::

    python tools/convert/official_far.py far_l_dual.pt \\
        checkpoints/far_l_dual.pth \\
        --out-config checkpoints/far_l_dual.py --ema
"""
import sys
from pathlib import Path
from typing import List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from convert_cli import converter_parser, run  # noqa: E402

from fqzoo.errors import exit_on_input_error  # noqa: E402


def main(argv: Optional[List[str]] = None) -> dict:
    parser = converter_parser(__doc__.split('\n\n')[0], ['generator'])
    return run(parser, 'far', argv)


if __name__ == '__main__':
    with exit_on_input_error():
        main()
