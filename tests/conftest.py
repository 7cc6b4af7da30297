"""Shared pytest fixtures for the generator tests."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from support import SPECS


@pytest.fixture
def spec_copy(tmp_path: Path) -> Callable[[str], Path]:
    """Copy a fixture spec into tmp_path as platform.yaml and return its path."""

    def copy(case: str) -> Path:
        target = tmp_path / "platform.yaml"
        shutil.copyfile(SPECS / f"{case}.yaml", target)
        return target

    return copy
