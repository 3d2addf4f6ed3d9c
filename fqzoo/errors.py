"""Refusals of a user's input, and how the command-line tools report them.

fqzoo raises :class:`InputError` where it refuses what a user gave it (a
file, a config value, a command-line argument) with a message written for
that user: a generator and a tokenizer that do not belong together, a
checkpoint that is not one or does not fit its config, a samples folder
made with other settings, ``--classes 0.5``. It is a ``ValueError``, so
code catching ``ValueError`` keeps working; :class:`InputKeyError`,
:class:`InputTypeError` and :class:`InputFileNotFoundError` are the
refusals that were ``KeyError`` / ``TypeError`` / ``FileNotFoundError`` (a
key or file the input lacks, an argument a component does not take) and
still are. A plain ``ValueError`` (or any other exception) stays what it
was: a bug, or a misuse of the Python API, worth its traceback.

Config mistakes are refusals too: an unknown ``type`` is an
:class:`InputKeyError` listing the known types, a misspelt argument an
:class:`InputTypeError` listing the accepted ones (both raised by
``fqzoo.registry``), and a quantizer size that is not a positive integer
(``codebook_size=0``) an :class:`InputError` naming the class, the argument
and the value; the tools print them as ``error: ...``. This module imports
only the standard library and is the lowest layer of the import contract
(``.importlinter``), so that every layer can raise these.

The tools run their ``main()`` under :func:`exit_on_input_error`: a
refusal prints ``error: <message>`` on stderr and exits with status 2 (as
argparse does for a bad command line), without a traceback;
``FQZOO_DEBUG=1`` re-raises it with its traceback.

Example:
    >>> try:
    ...     with exit_on_input_error():
    ...         raise InputError('a.pth and b.pth do not belong together')
    ... except SystemExit as exit_:
    ...     exit_.code
    2
"""
import contextlib
import os
import sys
from typing import Iterator

#: Environment variable that makes :func:`exit_on_input_error` re-raise.
DEBUG_ENV = 'FQZOO_DEBUG'
#: Exit status of a tool that refused its input (argparse's for usage).
EXIT_STATUS = 2
_TRUE = ('1', 'on', 'true', 'yes')


class InputError(ValueError):
    """The user's input (a file, a config value, an argument) is refused;
    the message names the culprit and what was expected."""


class InputKeyError(InputError, KeyError):
    """An :class:`InputError` for a key, entry or name the input lacks
    (a ``KeyError`` too)."""


class InputTypeError(InputError, TypeError):
    """An :class:`InputError` for an argument a component does not take
    (a ``TypeError`` too, as calling it with that argument would be)."""


class InputFileNotFoundError(InputError, FileNotFoundError):
    """An :class:`InputError` for a file or folder that is not there (a
    ``FileNotFoundError`` too)."""


def debug_enabled() -> bool:
    """Whether ``FQZOO_DEBUG`` asks for tracebacks (``1``, ``on``,
    ``true``, ``yes``)."""
    return os.environ.get(DEBUG_ENV, '').strip().lower() in _TRUE


def input_error_message(error: InputError) -> str:
    """The message of ``error`` as written (a ``KeyError``'s without the
    quotes its ``str`` adds)."""
    if len(error.args) == 1 and isinstance(error.args[0], str):
        return error.args[0]
    return str(error)


@contextlib.contextmanager
def exit_on_input_error() -> Iterator[None]:
    """Turn an :class:`InputError` into ``error: <message>`` on stderr and
    exit status 2, without a traceback; other exceptions pass unchanged.

    Wrap a tool's ``main()`` (``with exit_on_input_error(): main()``), not
    library code: only the process's last frame may exit.

    Raises:
        SystemExit: status 2, after an :class:`InputError`.
        InputError: the refusal itself when ``FQZOO_DEBUG`` is set.
    """
    try:
        yield
    except InputError as err:
        if debug_enabled():
            raise
        print(f'error: {input_error_message(err)}', file=sys.stderr,
              flush=True)
        raise SystemExit(EXIT_STATUS) from None
