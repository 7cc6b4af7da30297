"""Pinned versions shared with the install scripts: `scripts/versions.env` (KEY=value lines,
sourced by scripts/lib.sh) is the one place they are written; Python reads them here."""

from __future__ import annotations

from functools import cache
from pathlib import Path

VERSIONS_FILE = Path(__file__).resolve().parents[2] / "scripts" / "versions.env"
"""The repository's versions file (this package lives in `<repo>/generators/platformgen`)."""


@cache
def pinned() -> dict[str, str]:
    """Every KEY=value of the versions file (comments and blank lines skipped)."""
    found: dict[str, str] = {}
    for number, line in enumerate(VERSIONS_FILE.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.isidentifier() or not value or any(c in value for c in "'\" $"):
            raise ValueError(f"{VERSIONS_FILE}:{number}: not a KEY=value line: {line!r}")
        found[key] = value
    return found


def kubernetes_versions() -> tuple[str, ...]:
    """The Kubernetes releases every target is validated against (exact patch versions),
    oldest first."""
    versions = pinned()["KUBERNETES_VERSIONS"].split(",")
    return tuple(sorted(versions, key=lambda v: tuple(int(p) for p in v.split("."))))
