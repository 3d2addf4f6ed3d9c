"""What a sampling run was made with: checkpoint and config hashes.

The hashes are what a resumed run must match (a renamed or moved file with
the same content is the same model); paths and the model configs are
recorded for the reader.
"""
import hashlib
import json
from pathlib import Path
from typing import Optional, Tuple, Union

from mmengine.config import Config

from fqzoo.utils.files import file_sha256


def plain(value) -> object:
    """``value`` as JSON values (tuples as lists, others as strings)."""
    return json.loads(json.dumps(value, default=str))


def describe_model(config: Config, config_path: Union[str, Path],
                   checkpoint: Optional[Union[str, Path]]
                   ) -> Tuple[dict, dict]:
    """``(identity, info)`` of a model built from ``config`` (its ``model``
    entry) and ``checkpoint``.

    Returns:
        tuple: ``identity``: ``checkpoint_sha256`` and ``model_sha256``
        (of the merged ``model`` config, as sorted JSON); ``info``: the
        same plus the config and checkpoint paths and the ``model`` config.
    """
    model = plain(config.to_dict().get('model'))
    identity = dict(
        checkpoint_sha256=None if checkpoint is None
        else file_sha256(checkpoint),
        model_sha256=hashlib.sha256(json.dumps(
            model, sort_keys=True).encode()).hexdigest())
    info = dict(identity, config=str(Path(config_path).resolve()),
                checkpoint=None if checkpoint is None
                else str(Path(checkpoint).resolve()), model=model)
    return identity, info
