"""Loading a config the way every fqzoo tool does."""
from pathlib import Path
from typing import Optional, Union

from mmengine.config import Config

from fqzoo.errors import InputFileNotFoundError


def load_config(path: Union[str, Path],
                cfg_options: Optional[dict] = None) -> Config:
    """``Config.fromfile(path)`` with ``--cfg-options`` merged in.

    Raises:
        InputFileNotFoundError: no such config file.
    """
    if not Path(path).is_file():
        raise InputFileNotFoundError(f'Config file not found: {path}')
    cfg = Config.fromfile(str(path))
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    return cfg
