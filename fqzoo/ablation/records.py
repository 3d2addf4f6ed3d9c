"""A run's records: its :class:`RunResult` (``result.json``, written
atomically) and what its processes left behind (MMEngine scalars, logs,
metrics files)."""
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

RESULT_FILE = 'result.json'


@dataclass
class RunResult:
    """The outcome of one (config, seed) run, as stored in ``result.json``.

    Args:
        config (str): config file path.
        name (str): config stem, the run's name in the report.
        seed (int): ``randomness.seed`` of the run.
        status (str): ``'ok'`` or ``'failed'``.
        reason (str): why a failed run failed (its last error line).
        metrics (dict): test metrics (``tools/test.py --out``), then a
            generator's sampling and generation metrics as
            ``<key>@cfg<scale>``.
        model (str): a tokenizer's quantizer type, with the sub-quantizer's
            type in brackets for quantizers built from one (FQ, RVQ); a
            generator's head type.
        codebook_sizes (list[int]): codes per sub-token, one entry per
            sub-token (G of them: the index tuple length).
        bits_per_token (float): ``sum(log2(V_g))``, the bits of one index
            tuple.
        grid (str): a generator's token grid ``'hxw'``; empty for
            tokenizers (theirs depends on the image size).
        params (int): parameters of the inference tokenizer (encoder, heads,
            quantizer, decoder; not the discriminator, perceptual loss or
            regularizers with their teachers), or of the whole generator.
        train_time_s (float): wall time of training, seconds.
        eval_time_s (float): wall time of the test run (and of sampling
            and scoring samples), seconds.
        max_iters (int): iterations trained.
        work_dir (str): the run's work dir.
        checkpoint (str): the evaluated checkpoint.
    """

    config: str
    name: str
    seed: int
    status: str = 'failed'
    reason: str = ''
    metrics: Dict[str, float] = field(default_factory=dict)
    model: str = ''
    codebook_sizes: List[int] = field(default_factory=list)
    bits_per_token: float = 0.0
    grid: str = ''
    params: int = 0
    train_time_s: float = 0.0
    eval_time_s: float = 0.0
    max_iters: int = 0
    work_dir: str = ''
    checkpoint: str = ''

    @property
    def ok(self) -> bool:
        return self.status == 'ok'


def read_scalars(work_dir: Path) -> Tuple[List[dict], List[dict]]:
    """Training and validation records of a run's MMEngine logs.

    Reads every ``work_dir/<timestamp>/vis_data/scalars.json`` (a resumed
    run has several) in time order. Validation records carry no iteration
    (MMEngine logs them by epoch); each gets ``iter``, the iteration of the
    training record before it. A later record of the same iteration replaces
    an earlier one.

    Returns:
        tuple[list[dict], list[dict]]: training and validation records,
        each with an ``iter`` key, sorted by it.
    """
    train: Dict[int, dict] = {}
    val: Dict[int, dict] = {}
    last_iter = 0  # a resumed run's file goes on from the one before
    for path in sorted(Path(work_dir).glob('*/vis_data/scalars.json')):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            if 'iter' in record:
                last_iter = int(record['iter'])
                train[last_iter] = record
            else:
                val[last_iter] = dict(record, iter=last_iter)
    return ([train[i] for i in sorted(train)], [val[i] for i in sorted(val)])


def non_finite_loss(train_records: Sequence[dict]) -> Optional[str]:
    """The failure reason when a logged loss is NaN or infinite, else None."""
    for record in train_records:
        for key, value in record.items():
            if ('loss' in key and isinstance(value, (int, float))
                    and not math.isfinite(value)):
                return (f'non-finite {key} ({value}) at iteration '
                        f'{record["iter"]}')
    return None


def last_error_line(log_file: Path) -> str:
    """The last line of a process log that names an error (the exception
    line of a traceback), else its last non-empty line."""
    if not log_file.is_file():
        return ''
    lines = [line.strip() for line in
             log_file.read_text(errors='replace').splitlines() if line.strip()]
    for line in reversed(lines):
        head = line.split(':', 1)[0]
        if head.endswith(('Error', 'Exception', 'Interrupt')) or \
                head.startswith('Traceback'):
            return line[:300]
    return lines[-1][:300] if lines else ''


def error_line(err: Exception, limit: int = 300) -> str:
    """``'Type: message'`` of an exception, first line, at most ``limit``
    characters (a KeyError's message without the quotes repr adds)."""
    message = err.args[0] if isinstance(err, KeyError) and err.args else err
    lines = str(message).splitlines() or ['']
    return f'{type(err).__name__}: {lines[0]}'[:limit]


def load_result(run_dir: Path) -> Optional[RunResult]:
    """The stored result of a finished run, or None."""
    path = Path(run_dir) / RESULT_FILE
    if not path.is_file():
        return None
    return RunResult(**json.loads(path.read_text()))



def numeric(metrics: dict) -> Dict[str, float]:
    """The entries of ``metrics`` that are numbers (not per-class dicts)."""
    return {k: v for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}

