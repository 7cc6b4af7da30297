"""Fixtures for tests/images: the images `make images` built (their records) and a runtime."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from support import ROOT, load_script, unavailable

PODMAN_RUN = [
    "podman", "run", "--rm", "--runtime", "runc", "--network", "host",
    # podman raises these limits to the maximum, which needs CAP_SYS_RESOURCE (absent here).
    "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
    "--read-only", "--tmpfs", "/tmp:rw,size=512m", "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges",
]  # fmt: skip
"""How the tests run an image: under the pods' constraints (read-only root, /tmp a tmpfs,
no capabilities, no privilege escalation), host network on loopback only."""


@pytest.fixture(scope="session")
def images() -> ModuleType:
    module = sys.modules.get("images")
    return module if module is not None else load_script("images")


@pytest.fixture(scope="session")
def built(images: ModuleType) -> dict[str, dict[str, Any]]:
    """Every image, built (or found in the cache) by scripts/build-images.sh: its record."""
    if os.geteuid() != 0:
        unavailable("building images needs root (buildah --isolation chroot, mmdebstrap)")
    result = subprocess.run(
        [str(ROOT / "scripts" / "build-images.sh")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"make images failed:\n{result.stderr[-4000:]}"
    manifest = json.loads(images.MANIFEST.read_text(encoding="utf-8"))
    assert shutil.which("podman"), "scripts/build-images.sh installs podman"
    return {record["folder"]: record for record in manifest["images"]}


@pytest.fixture(scope="session")
def podman_run() -> list[str]:
    """PODMAN_RUN, for tests that start containers their own way."""
    return list(PODMAN_RUN)


@pytest.fixture(scope="session")
def podman() -> Callable[..., str]:
    """`podman run` (PODMAN_RUN) with these arguments; its stdout (fails on an error)."""

    def run(*args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            [*PODMAN_RUN, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        assert result.returncode == 0, f"podman run {' '.join(args)}:\n{result.stderr[-3000:]}"
        return result.stdout

    return run
