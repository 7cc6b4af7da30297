"""The thin shell around every step's pure core: errors become one readable line and an exit code.

A step CLI declares only its own arguments and its core call; ``StepCli`` does the rest::

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--data", required=True, help="...")

    def run(args: argparse.Namespace) -> None:
        train(args.data, ...)

    STEP = StepCli("train", "Train a Keras classifier ...", add_arguments, run)

    def main(argv: Sequence[str] | None = None) -> int:
        return STEP.main(argv)

``StepError`` (and its subclass ``DataError``) is a message for the user: it is printed as
``<step>: <message>`` on stderr and the step exits 1. Bad usage exits 2 (argparse). Anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

# When set, every step appends one JSON line per attempt to this file:
# {"step", "status": "ok"|"failed"|"error", "seconds", "message"}. The local pipeline runner uses
# it for its summary (durations, retries); nothing else reads it.
STEP_LOG_ENV = "MLP_STEP_LOG"

TENSORFLOW_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}
"""``StepCli.environment`` for steps that import TensorFlow: quiet C++ logs, and oneDNN off so
results are bit-stable across CPUs."""


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


def add_registry_source(
    parser: argparse.ArgumentParser,
    local: tuple[str, str],
    registry: tuple[str, str],
    default_version: str,
) -> None:
    """Exactly one of a local input (``local``: flag, help) and the input a registered version
    records (``registry``: flag, help), with ``--model`` and ``--version`` (default
    ``default_version``) naming that version."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(local[0], help=local[1])
    source.add_argument(registry[0], metavar="REGISTRY", help=registry[1])
    parser.add_argument("--model", help=f"model name (with {registry[0]})")
    parser.add_argument(
        "--version",
        default=default_version,
        help=f"version number, latest or production (with {registry[0]}; {default_version})",
    )


@dataclass(frozen=True)
class StepCli:
    """A step's command line: ``mlp-<name>``, its own arguments and its core call.

    ``main`` parses ``argv`` (``-v/--verbose`` follows the step's own arguments), configures
    logging, sets the ``environment`` defaults the process has not set, and runs ``body`` under
    ``run_step``: a ``StepError`` prints ``<name>: <message>`` and exits 1, bad usage exits 2.
    """

    name: str
    description: str
    arguments: Callable[[argparse.ArgumentParser], None]
    body: Callable[[argparse.Namespace], int | None]
    environment: Mapping[str, str] = field(default_factory=dict)

    def parser(self) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog=f"mlp-{self.name}", description=self.description)
        self.arguments(parser)
        parser.add_argument("-v", "--verbose", action="count", default=0)
        return parser

    def main(self, argv: Sequence[str] | None = None) -> int:
        args = self.parser().parse_args(argv)
        configure_logging(args.verbose)
        for key, value in self.environment.items():
            os.environ.setdefault(key, value)
        return run_step(self.name, lambda: self.body(args))
