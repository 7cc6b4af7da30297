"""scripts/versions.env: one file of pinned versions, read by the scripts and by Python alike."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from platformgen import versions

from support import ROOT


def test_python_and_the_scripts_read_the_same_versions() -> None:
    script = 'source scripts/lib.sh; IFS=, read -r -a K <<<"$KUBERNETES_VERSIONS"; echo "${K[@]}"'
    shell = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tuple(sorted(shell)) == versions.kubernetes_versions()
    assert all(len(v.split(".")) == 3 for v in shell)


def test_a_line_that_is_not_key_value_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "versions.env"
    broken.write_text('# comment\nKUBERNETES_VERSIONS="1.35.4 1.36.3"\n', encoding="utf-8")
    monkeypatch.setattr(versions, "VERSIONS_FILE", broken)
    versions.pinned.cache_clear()
    try:
        with pytest.raises(ValueError, match="versions.env:2: not a KEY=value line"):
            versions.pinned()
    finally:
        versions.pinned.cache_clear()
