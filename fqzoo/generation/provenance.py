"""What a sampling run was made with, and whether its models belong
together.

:func:`describe_model` gives the identity a resumed run must match (the
checkpoint by content, :func:`fqzoo.utils.shards.source_file`: a renamed or
moved file with the same content is the same model, new weights saved over
it make the run's shards stale) and the info recorded for the reader (paths,
the model config, the token layout and tokenizer the checkpoint records).
:func:`check_pairing` refuses a generator and a tokenizer that do not belong
together, naming both sides, before anything is written.
"""
import hashlib
import json
from pathlib import Path
from typing import Optional, Tuple, Union

from mmengine.config import Config

from fqzoo.errors import InputError
from fqzoo.utils.shards import source_file
from fqzoo.utils.token_layout import (
    KEY,
    SOURCE_KEY,
    TOKENIZER_KEY,
    check_same_layout,
    checkpoint_meta,
    generator_layout,
    merge_layouts,
    tokenizer_layout,
)


def plain(value) -> object:
    """``value`` as JSON values (tuples as lists, others as strings)."""
    return json.loads(json.dumps(value, default=str))


def describe_model(config: Config, config_path: Union[str, Path],
                   checkpoint: Optional[Union[str, Path]]
                   ) -> Tuple[dict, dict]:
    """``(identity, info)`` of a model built from ``config`` (its ``model``
    entry) and ``checkpoint``.

    Returns:
        tuple: ``identity``: ``checkpoint`` (``dict(path, sha256)``, None
        without one) and ``model_sha256`` (of the merged ``model`` config,
        as sorted JSON); ``info``: the same plus the config path, the
        ``model`` config and what the checkpoint's ``meta`` records:
        ``token_layout``, ``tokenizer_checkpoint`` (a generator's) and
        ``source_sha256`` (a published copy's).
    """
    model = plain(config.to_dict().get('model'))
    identity = dict(
        checkpoint=None if checkpoint is None else source_file(checkpoint),
        model_sha256=hashlib.sha256(json.dumps(
            model, sort_keys=True).encode()).hexdigest())
    meta = {} if checkpoint is None else checkpoint_meta(checkpoint)
    info = dict(identity, config=str(Path(config_path).resolve()),
                model=model,
                **{key: plain(meta.get(key))
                   for key in (KEY, TOKENIZER_KEY, SOURCE_KEY)})
    return identity, info


def _name(role: str, info: dict) -> str:
    checkpoint = info.get('checkpoint') or {}
    if checkpoint.get('path'):
        return f'the {role} checkpoint {checkpoint["path"]}'
    return f'the {role} built from {info.get("config") or "its config"}'


def _short(sha: str) -> str:
    return f'{sha[:16]}...'


def check_pairing(generator, tokenizer, info: Optional[dict] = None) -> None:
    """Refuse a generator and a tokenizer that do not belong together.

    Compared: each model with the layout its checkpoint records; the two
    layouts (codebook sizes, sub-token order with branch names, downsample
    factor, grid per image size: :mod:`fqzoo.utils.token_layout`); and the
    tokenizer checkpoint the generator was trained with (recorded from its
    codes) with the one given, by sha256 (a copy whose ``meta`` records
    that sha256 as ``source_sha256`` is the same tokenizer). What either
    side does not record is not compared.

    Args:
        generator (AutoregressiveGenerator): the token generator.
        tokenizer (ImageTokenizer): its tokenizer.
        info (dict, optional): ``dict(generator=..., tokenizer=...)``, each
            the ``info`` of :func:`describe_model`. Defaults to None (only
            the built models are compared).

    Raises:
        InputError: one message naming both sides (file and value).
    """
    gen_info = (info or {}).get('generator') or {}
    tok_info = (info or {}).get('tokenizer') or {}
    gen_name, tok_name = _name('generator', gen_info), _name('tokenizer',
                                                             tok_info)
    built_gen, built_tok = generator_layout(generator), tokenizer_layout(
        tokenizer)
    for role, built, recorded in (('generator', built_gen, gen_info),
                                  ('tokenizer', built_tok, tok_info)):
        check_same_layout(
            recorded.get(KEY), built, first_name=_name(role, recorded),
            second_name=f'the {role} built from '
            f'{recorded.get("config") or "its config"}')
    check_same_layout(merge_layouts(built_gen, gen_info.get(KEY)),
                      merge_layouts(built_tok, tok_info.get(KEY)),
                      first_name=gen_name, second_name=tok_name)
    trained_with = gen_info.get(TOKENIZER_KEY) or {}
    given = tok_info.get('checkpoint') or {}
    if trained_with.get('sha256') and given.get('sha256') and \
            trained_with['sha256'] not in (given['sha256'],
                                           tok_info.get(SOURCE_KEY)):
        raise InputError(
            f'{gen_name} and {tok_name} do not belong together: the '
            f'generator was trained on codes of the tokenizer checkpoint '
            f'{trained_with.get("path")} (sha256 '
            f'{_short(trained_with["sha256"])}), the tokenizer given is '
            f'{given.get("path")} (sha256 {_short(given["sha256"])}): '
            'sample with the tokenizer whose codes trained the generator')
