"""The tool processes a run starts, from the repository root."""
import subprocess
import time
from pathlib import Path
from typing import List, Optional, Tuple

REPO = Path(__file__).resolve().parents[2]
TRAIN_TOOL = REPO / 'tools' / 'train.py'
TEST_TOOL = REPO / 'tools' / 'test.py'
SAMPLE_TOOL = REPO / 'tools' / 'sample.py'
EVAL_TOOL = REPO / 'tools' / 'eval_generation.py'


def run_process(args: List[str], log_file: Path,
                env: Optional[dict]) -> Tuple[int, float]:
    """Run ``args`` with stdout and stderr into ``log_file``; returns the
    exit code and the wall time."""
    start = time.monotonic()
    with open(log_file, 'a') as log:
        code = subprocess.call(args, stdout=log, stderr=subprocess.STDOUT,
                               cwd=REPO, env=env)
    return code, time.monotonic() - start

