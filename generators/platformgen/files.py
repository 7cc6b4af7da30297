"""The only writer of generated trees: render into a temp dir, then swap it in."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from platformgen.errors import PlatformgenError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Drift:
    """How the tree on disk differs from what the spec renders."""

    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changed or self.missing or self.extra)


def _on_disk(out: Path, roots: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for root in roots:
        base = out / root
        if base.is_dir():
            found.update(p.relative_to(out).as_posix() for p in base.rglob("*") if p.is_file())
        elif base.is_file():
            found.add(root)
    return found


def owned_files(
    out: Path, owners: Mapping[str, Callable[[str, str], bool]], skip: Sequence[str] = ()
) -> list[str]:
    """Generated files found on disk outside the roots: files under `out` (not in hidden folders
    or the top-level folders `skip`) whose name is a key of `owners` and for which that
    predicate, given the relative path and the first 512 bytes as text, says so."""
    found = []
    for folder, dirs, filenames in os.walk(out):
        top = Path(folder) == out
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (top and d in skip))
        for name in sorted(set(owners) & set(filenames)):
            path = Path(folder) / name
            with path.open("rb") as handle:
                head = handle.read(512).decode("utf-8", errors="replace")
            relative = path.relative_to(out).as_posix()
            if owners[name](relative, head):
                found.append(relative)
    return sorted(found)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def compare_tree(out: Path, files: Mapping[str, str], roots: Sequence[str]) -> Drift:
    """Changed, missing and extra files under `roots` of `out`, against `files`."""
    existing = _on_disk(out, roots)
    changed = sorted(
        p for p in files if p in existing and (out / p).read_bytes() != files[p].encode()
    )
    missing = sorted(set(files) - existing)
    extra = sorted(existing - set(files))
    return Drift(changed=changed, missing=missing, extra=extra)


STAGING_PREFIX = ".platformgen-"
JOURNAL = "journal.json"
"""Inside a staging folder: the roots being swapped and which of them existed before. Its
presence means the swap had begun; `recover` rolls such a swap back to the old tree."""
COMMITTED = "committed"
"""Inside a staging folder: every root was swapped in; only the clean-up remains."""


def recover(out: Path) -> list[str]:
    """Undo what an interrupted `write_tree` left in `out` (a crash or kill between its
    renames): put every old root back and delete staging folders. Returns what was restored."""
    restored: list[str] = []
    if not out.is_dir():
        return restored
    for staging in sorted(out.glob(f"{STAGING_PREFIX}*")):
        if not staging.is_dir():
            continue
        journal = staging / JOURNAL
        if journal.is_file() and not (staging / COMMITTED).exists():
            entries = json.loads(journal.read_text(encoding="utf-8"))
            trash = staging / ".old"
            for root, existed in entries.items():
                if (trash / root).exists():
                    if (out / root).exists():
                        _remove(out / root)
                    (trash / root).rename(out / root)
                    restored.append(root)
                elif not existed and (out / root).exists() and not (staging / root).exists():
                    # The new root was renamed in, and there was no old one: remove it.
                    _remove(out / root)
                    restored.append(root)
        log.info("removing leftover staging folder %s", staging.name)
        shutil.rmtree(staging)
    return restored


def write_tree(out: Path, files: Mapping[str, str], roots: Sequence[str]) -> None:
    """Replace `roots` (folders, or single files) under `out` with `files`, all or nothing.

    Everything is written to a staging folder next to the roots first; only when every file
    is written are the old roots moved aside and the new ones renamed into place. An
    exception during the swap puts the old roots back; a kill during it leaves a journal that
    the next run's `recover` uses to do the same. Raises PlatformgenError when `out` cannot
    be written.
    """
    for path in files:
        if not any(path == root or path.startswith(f"{root}/") for root in roots):
            raise ValueError(f"{path} is outside the generated roots {roots}")
    try:
        recover(out)
        out.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out))
    except OSError as err:
        raise PlatformgenError(f"cannot write to {out}: {err.strerror or err}") from None
    trash = staging / ".old"
    try:
        for path, text in files.items():
            target = staging / path
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
        trash.mkdir()
        journal = {root: (out / root).exists() for root in roots}
        (staging / JOURNAL).write_text(json.dumps(journal), encoding="utf-8")
        for root in roots:
            current = out / root
            if current.exists():
                (trash / root).parent.mkdir(parents=True, exist_ok=True)
                current.rename(trash / root)
            fresh = staging / root
            if fresh.exists():
                current.parent.mkdir(parents=True, exist_ok=True)
                fresh.rename(current)
            log.info("wrote %s%s", root, "/" if current.is_dir() else "")
        (staging / COMMITTED).touch()
    except BaseException as err:
        recover(out)
        if isinstance(err, OSError):
            raise PlatformgenError(f"cannot write to {out}: {err.strerror or err}") from None
        raise
    shutil.rmtree(staging, ignore_errors=True)


def write_file(path: Path, text: str) -> None:
    """Replace one file atomically (a temp file beside it, then a rename), keeping its mode."""
    handle = tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", newline="", dir=path.parent, prefix=f".{path.name}.", delete=False
    )
    try:
        with handle:
            handle.write(text)
        if path.exists():
            shutil.copymode(path, handle.name)
        Path(handle.name).replace(path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
