"""A crash mid-render leaves the old tree: fault injection between the renames of write_tree."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from platformgen.cli import main
from platformgen.files import STAGING_PREFIX, recover, write_tree

from support import ROOT, snapshot

ROOTS = ("base", "overlays")
OLD = {"base/a.yaml": "old a\n", "base/gone.yaml": "old only\n", "overlays/dev/k.yaml": "old k\n"}
NEW = {"base/a.yaml": "new a\n", "base/b.yaml": "new b\n", "overlays/dev/k.yaml": "new k\n"}


def staging_folders(out: Path) -> list[Path]:
    return sorted(out.glob(f"{STAGING_PREFIX}*"))


def failing_rename(fail_at: int, action: Callable[[], None]) -> Callable[[Path, Path], Path]:
    """Path.rename that runs `action` instead of the `fail_at`-th rename (1-based)."""
    calls = {"n": 0}
    real = Path.rename

    def rename(self: Path, target: Path) -> Path:
        calls["n"] += 1
        if calls["n"] == fail_at:
            action()
        return real(self, target)

    return rename  # type: ignore[return-value]


@pytest.mark.parametrize("fail_at", [1, 2, 3, 4])
def test_an_exception_between_renames_restores_the_old_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int
) -> None:
    """Renames: base -> trash, new base in, overlays -> trash, new overlays in. Fail at each."""
    write_tree(tmp_path, OLD, ROOTS)
    before = snapshot(tmp_path)

    def boom() -> None:
        raise RuntimeError("injected fault")

    monkeypatch.setattr(Path, "rename", failing_rename(fail_at, boom))
    with pytest.raises(RuntimeError, match="injected fault"):
        write_tree(tmp_path, NEW, ROOTS)
    monkeypatch.undo()
    assert snapshot(tmp_path) == before
    assert staging_folders(tmp_path) == []


KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
from platformgen.files import write_tree
real = Path.rename
calls = [0]
def rename(self, target):
    calls[0] += 1
    if calls[0] == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, target)
Path.rename = rename
write_tree(Path(sys.argv[1]), {files!r}, ("base", "overlays"))
"""


def killed_render(out: Path, kill_at: int) -> None:
    script = textwrap.dedent(KILL_SCRIPT.format(files=NEW))
    result = subprocess.run(
        [sys.executable, "-c", script, str(out), str(kill_at)], capture_output=True, check=False
    )
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()


@pytest.mark.parametrize("kill_at", [2, 3, 4])
def test_a_kill_between_renames_is_rolled_back_by_the_next_run(
    tmp_path: Path, kill_at: int
) -> None:
    write_tree(tmp_path, OLD, ROOTS)
    before = snapshot(tmp_path)
    killed_render(tmp_path, kill_at)
    # The kill left a half-swapped tree and its staging folder (with the journal) behind.
    assert len(staging_folders(tmp_path)) == 1
    assert {p for p in snapshot(tmp_path) if not p.startswith(STAGING_PREFIX)} != set(before)

    assert recover(tmp_path)
    assert snapshot(tmp_path) == before
    assert staging_folders(tmp_path) == []


def test_the_next_render_cleans_up_after_a_kill(
    spec_copy: Callable[[str], Path], tmp_path: Path
) -> None:
    spec = spec_copy("minimal")
    out = tmp_path / "repo"
    assert main(["render", "--spec", str(spec), "--out", str(out)]) == 0
    rendered = snapshot(out)
    killed_render(out, 3)
    assert staging_folders(out)
    assert main(["render", "--spec", str(spec), "--out", str(out)]) == 0
    assert staging_folders(out) == []
    assert snapshot(out) == rendered


def test_a_kill_before_the_first_rename_leaves_the_old_tree(tmp_path: Path) -> None:
    """Before the first rename the old tree was never touched; the next run removes the rest."""
    write_tree(tmp_path, OLD, ROOTS)
    before = snapshot(tmp_path)
    killed_render(tmp_path, 1)
    assert {
        p: b for p, b in snapshot(tmp_path).items() if not p.startswith(STAGING_PREFIX)
    } == before
    recover(tmp_path)
    assert snapshot(tmp_path) == before


def test_repository_render_leaves_no_staging_folder() -> None:
    assert staging_folders(ROOT) == []


FILE_ROOTS = ("base", "app/Dockerfile", "old/Dockerfile")
"""Generated files beside hand-written ones (a component's Dockerfile) are roots of their own."""
OLD_FILES = {"base/a.yaml": "old a\n", "app/Dockerfile": "old app\n", "old/Dockerfile": "orphan\n"}
NEW_FILES = {"base/a.yaml": "new a\n", "app/Dockerfile": "new app\n", "new/Dockerfile": "new\n"}


def test_single_file_roots_are_swapped_and_hand_written_neighbours_kept(tmp_path: Path) -> None:
    write_tree(tmp_path, OLD_FILES, FILE_ROOTS)
    (tmp_path / "app" / "main.py").write_text("hand-written\n")
    write_tree(tmp_path, NEW_FILES, (*FILE_ROOTS, "new/Dockerfile"))
    got = {p: b.decode() for p, b in snapshot(tmp_path).items()}
    assert got == {**NEW_FILES, "app/main.py": "hand-written\n"}  # the orphan is gone
    with pytest.raises(ValueError, match="outside the generated roots"):
        write_tree(tmp_path, {"app/main.py": "x\n"}, FILE_ROOTS)


@pytest.mark.parametrize("fail_at", range(1, 7))
def test_a_fault_while_swapping_single_files_restores_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int
) -> None:
    """Six renames: base out and in, app/Dockerfile out and in, the orphan out, new in."""
    write_tree(tmp_path, OLD_FILES, FILE_ROOTS)
    (tmp_path / "app" / "main.py").write_text("hand-written\n")
    before = snapshot(tmp_path)

    def boom() -> None:
        raise RuntimeError("injected fault")

    monkeypatch.setattr(Path, "rename", failing_rename(fail_at, boom))
    with pytest.raises(RuntimeError, match="injected fault"):
        write_tree(tmp_path, NEW_FILES, (*FILE_ROOTS, "new/Dockerfile"))
    monkeypatch.undo()
    assert snapshot(tmp_path) == before
    assert staging_folders(tmp_path) == []
