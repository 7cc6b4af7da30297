"""Shared paths and helpers for the generator tests (importable as `support`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SPECS = FIXTURES / "specs"
GOLDEN = ROOT / "tests" / "golden"
TOOLS_BIN = ROOT / ".tools" / "bin"
SPEC_CASES = sorted(p.stem for p in SPECS.glob("*.yaml"))


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root`, by relative path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def tool(name: str) -> Path:
    """A pinned tool from .tools/bin; fails in CI, skips elsewhere, when it is not installed."""
    path = TOOLS_BIN / name
    if not path.exists():
        message = f"{name} is not installed in .tools/bin: run `make tools`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
