"""The thin shell around every step's pure core: errors become one readable line and an exit code.

A step CLI looks like::

    def main(argv: Sequence[str] | None = None) -> int:
        args = build_parser().parse_args(argv)
        return run_step("train", lambda: _run(args))

``StepError`` (and its subclass ``DataError``) is a message for the user: it is printed as
``<step>: <message>`` on stderr and the step exits 1. Bad usage exits 2 (argparse). Anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable


class StepError(Exception):
    """An error the user can fix (bad path, bad config). Printed without a traceback."""


class DataError(StepError):
    """The data broke a declared rule. The message names the column and the rule."""


class TransientError(StepError):
    """A failure worth retrying (network, a busy source). Pipelines set retries for these."""


def configure_logging(verbosity: int = 0) -> None:
    """Log to stderr: warnings by default, info with ``-v``, debug with ``-vv``."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )


def run_step(name: str, body: Callable[[], int | None]) -> int:
    """Run ``body``; print a ``StepError`` as ``<name>: <message>`` and return 1."""
    try:
        code = body()
    except StepError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"{name}: {exc.filename or exc}: no such file or directory", file=sys.stderr)
        return 1
    return 0 if code is None else code
