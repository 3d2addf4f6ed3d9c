"""Test-only plugin, imported through a config's ``custom_imports``: each
checkpoint (``*.pth``) commit waits ``FQZOO_TEST_SAVE_DELAY`` seconds between
writing the temporary file and renaming it, with ``.saving`` (holding the
checkpoint's name) in its folder meanwhile, so a test can kill the process
inside a save."""
import os
import time
from pathlib import Path

from fqzoo.utils import checkpoint as ckpt_utils

_commit_file = ckpt_utils.commit_file


def slow_commit_file(tmp, path) -> None:
    """:func:`fqzoo.utils.checkpoint.commit_file`, slowly for checkpoints."""
    path = Path(path)
    if path.suffix != '.pth':
        _commit_file(tmp, path)
        return
    marker = path.parent / '.saving'
    marker.write_text(path.name)
    time.sleep(float(os.environ.get('FQZOO_TEST_SAVE_DELAY', '0')))
    _commit_file(tmp, path)
    marker.unlink()


ckpt_utils.commit_file = slow_commit_file
