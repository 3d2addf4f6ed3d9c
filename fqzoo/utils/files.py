"""Small file helpers shared by the tools' engines: atomic JSON, file
hashes, and the settings record that keeps a resumable output folder from
mixing runs made with other settings."""
import hashlib
import json
import os
from pathlib import Path
from typing import Union

SETTINGS = '.settings.json'
CHUNK = 1 << 22


def write_json_atomic(path: Union[str, Path], data: dict) -> Path:
    """JSON (indented) written to a temporary name in the same folder, then
    renamed, so ``path`` is either absent or complete."""
    path = Path(path)
    tmp = path.with_name(f'.{path.name}.tmp')
    tmp.write_text(json.dumps(data, indent=2) + '\n')
    os.replace(tmp, path)
    return path


def file_sha256(path: Union[str, Path]) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as file:
        for block in iter(lambda: file.read(CHUNK), b''):
            digest.update(block)
    return digest.hexdigest()


def check_settings(out_dir: Union[str, Path], settings: dict, *,
                   what: str = 'files', write: bool = True) -> None:
    """Refuse a folder whose ``what`` were made with other settings.

    The first call records ``settings`` in ``out_dir/.settings.json``
    (when ``write``); later calls compare with it (as JSON, so tuples equal
    lists).

    Raises:
        ValueError: naming every setting that differs, with both values.
    """
    path = Path(out_dir) / SETTINGS
    settings = json.loads(json.dumps(settings))
    if path.is_file():
        old = json.loads(path.read_text())
        if old != settings:
            changed = [f'{k}: {old.get(k)!r} in the folder, now '
                       f'{settings.get(k)!r}'
                       for k in sorted(set(old) | set(settings))
                       if old.get(k) != settings.get(k)]
            raise ValueError(
                f'{out_dir} holds {what} made with other settings ('
                + '; '.join(changed) + '): use another output folder or '
                'delete it')
    elif write:
        write_json_atomic(path, settings)
