"""The only writer of generated trees: render into a temp dir, then swap it in."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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
    return found


def compare_tree(out: Path, files: Mapping[str, str], roots: Sequence[str]) -> Drift:
    """Changed, missing and extra files under `roots` of `out`, against `files`."""
    existing = _on_disk(out, roots)
    changed = sorted(
        p for p in files if p in existing and (out / p).read_bytes() != files[p].encode()
    )
    missing = sorted(set(files) - existing)
    extra = sorted(existing - set(files))
    return Drift(changed=changed, missing=missing, extra=extra)


def write_tree(out: Path, files: Mapping[str, str], roots: Sequence[str]) -> None:
    """Replace `roots` under `out` with `files`, all or nothing.

    Everything is written to a staging folder next to the roots first; only when every file
    is written are the old roots moved aside and the new ones renamed into place.
    """
    for path in files:
        if path.split("/", 1)[0] not in roots:
            raise ValueError(f"{path} is outside the generated roots {roots}")
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".platformgen-", dir=out))
    trash = staging / ".old"
    try:
        for path, text in files.items():
            target = staging / path
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
        trash.mkdir()
        for root in roots:
            current = out / root
            if current.exists():
                current.rename(trash / root)
            fresh = staging / root
            if fresh.exists():
                fresh.rename(current)
            log.info("wrote %s/", root)
    except BaseException:
        for root in roots:
            if (trash / root).exists():
                if (out / root).exists():
                    shutil.rmtree(out / root)
                (trash / root).rename(out / root)
        raise
    finally:
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
