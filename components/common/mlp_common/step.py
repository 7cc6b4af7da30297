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

import json
import logging
import os
import sys
import time
from collections.abc import Callable

# When set, every step appends one JSON line per attempt to this file:
# {"step", "status": "ok"|"failed"|"error", "seconds", "message"}. The local pipeline runner uses
# it for its summary (durations, retries); nothing else reads it.
STEP_LOG_ENV = "MLP_STEP_LOG"


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


def record_attempt(step: str, status: str, seconds: float, message: str = "") -> None:
    """Append one attempt record to ``$MLP_STEP_LOG`` (no-op when unset)."""
    path = os.environ.get(STEP_LOG_ENV)
    if not path:
        return
    entry = {"step": step, "status": status, "seconds": round(seconds, 3), "message": message}
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(entry, sort_keys=True) + "\n")


def run_step(name: str, body: Callable[[], int | None]) -> int:
    """Run ``body``; print a ``StepError`` as ``<name>: <message>`` and return 1."""
    start = time.perf_counter()
    try:
        code = body()
    except StepError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        record_attempt(name, "failed", time.perf_counter() - start, str(exc))
        return 1
    except FileNotFoundError as exc:
        message = f"{exc.filename or exc}: no such file or directory"
        print(f"{name}: {message}", file=sys.stderr)
        record_attempt(name, "failed", time.perf_counter() - start, message)
        return 1
    except BaseException as exc:
        record_attempt(name, "error", time.perf_counter() - start, repr(exc))
        raise
    code = 0 if code is None else code
    record_attempt(name, "ok" if code == 0 else "failed", time.perf_counter() - start)
    return code
