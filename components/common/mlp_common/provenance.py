"""Provenance facts recorded with every output that matters: code version and timestamps."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

CODE_VERSION_ENV = "MLP_CODE_VERSION"


def utc_now() -> str:
    """The current UTC time as an RFC 3339 string with second precision (``...Z``)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def code_version(start: str | os.PathLike[str] | None = None) -> str:
    """The code version: ``$MLP_CODE_VERSION`` if set (container builds bake it in), else the
    git sha of the checkout containing ``start`` (default: this file), with ``-dirty`` appended
    when the work tree has changes, else ``"unknown"``."""
    baked = os.environ.get(CODE_VERSION_ENV)
    if baked:
        return baked
    where = Path(start) if start is not None else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=where,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha
