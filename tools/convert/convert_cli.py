"""The command line every ``tools/convert/*.py`` shares: ``SRC DST
--out-config CFG [--ema]``, plus ``--image-size`` for tokenizers and
``--num-heads`` / ``--grid-size`` for generators; the layout is detected
from the checkpoint's keys (``fqzoo.converters``)."""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from fqzoo.converters import summary, write_converted  # noqa: E402
from fqzoo.converters.transformer import RELEASED_NUM_HEADS  # noqa: E402

COMMON = ('src', 'dst', 'out_config', 'ema', 'image_size')


def converter_parser(description: str, kinds: List[str]
                     ) -> argparse.ArgumentParser:
    """The shared flags, and those of the model ``kinds``
    (``'tokenizer'``, ``'generator'``)."""
    parser = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', type=Path, help='released checkpoint')
    parser.add_argument('dst', type=Path, help='fqzoo checkpoint to write')
    parser.add_argument('--out-config', type=Path, required=True,
                        help='fqzoo config to write (standalone)')
    parser.add_argument('--ema', action='store_true',
                        help='convert the "ema" entry instead of "model"')
    if 'tokenizer' in kinds:
        parser.add_argument('--image-size', type=int, nargs='+',
                            default=None,
                            help='image sizes whose token grids the '
                            'checkpoint records (default: FQGAN the size '
                            'its adapters fit, LlamaGen VQ 256)')
    if 'generator' in kinds:
        parser.add_argument('--num-heads', type=int, default=None,
                            help='attention heads (default: the released '
                            f'size of the width, {RELEASED_NUM_HEADS})')
        parser.add_argument('--grid-size', type=int, default=None,
                            help='token grid side, image size / '
                            'downsampling (default: 16)')
    return parser


def run(parser: argparse.ArgumentParser, family: Optional[str],
        argv: Optional[List[str]] = None) -> dict:
    """Parse ``argv``, convert, write the checkpoint and the config, print
    a summary; returns the checkpoint's meta."""
    args = parser.parse_args(argv)
    options = {k: v for k, v in vars(args).items()
               if k not in COMMON and v is not None}
    meta = write_converted(args.src, args.dst, args.out_config, family,
                           ema=args.ema,
                           image_sizes=getattr(args, 'image_size', None),
                           **options)
    print(f'Wrote {args.dst} and {args.out_config}')
    for line in summary(meta):
        print('  ' + line)
    return meta
