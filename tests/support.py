"""Shared paths and helpers for the generator tests (importable as `support`)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import NoReturn

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


def unavailable(message: str) -> NoReturn:
    """A pinned tool or schema set is missing: fail in CI (never a silent skip), skip locally."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_tools(*names: str, install: str = "make tools") -> None:
    """Every named tool is in .tools/bin, or `unavailable` says what to run."""
    missing = [name for name in names if not (TOOLS_BIN / name).exists()]
    if missing:
        unavailable(f"missing {', '.join(missing)} in .tools/bin: run `{install}`")


def tool(name: str) -> Path:
    """A pinned tool from .tools/bin (see `require_tools`)."""
    require_tools(name)
    return TOOLS_BIN / name


def load_script(name: str) -> ModuleType:
    """`scripts/<name>.py` as a module named `name` (the scripts are files, not a package)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    """A free TCP port on the loopback address."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def oci_registry(state: Path) -> Iterator[str]:
    """The pinned distribution registry (`make registry-tools`) on a free loopback port, with
    its state in `state`; yields host:port and stops it by PID. The script is loaded here, not
    at a test module's import: it puts scripts/ on sys.path, which must not happen while pytest
    is still collecting (the `tests` namespace then lost `tests.security`)."""
    require_tools("registry", install="make registry-tools")
    image_registry = load_script("image_registry")
    address: str = image_registry.registry_up(state, free_port())
    try:
        yield address
    finally:
        image_registry.registry_down(state)
