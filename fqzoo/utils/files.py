"""Small file helpers shared by the tools' engines: atomic JSON and file
hashes (the settings guard of resumable output folders is
:class:`fqzoo.utils.shards.ShardRun`)."""
import hashlib
import json
import os
from pathlib import Path
from typing import Union

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
