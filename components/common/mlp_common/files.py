"""Atomic writes: a reader never sees a half-written file or directory.

Files are written to a temporary sibling and moved into place with ``os.replace``; directories are
built in a temporary sibling and renamed. Both live on the same filesystem as the target, so the
final rename is atomic on POSIX.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (parent directories are created)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def dumps_json(document: Any) -> str:
    """Deterministic JSON: sorted keys, two-space indent, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_json_atomic(path: str | os.PathLike[str], document: Any) -> Path:
    """Write ``document`` as deterministic JSON to ``path`` atomically."""
    return write_text_atomic(path, dumps_json(document))


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON document."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str], *, replace: bool = True) -> Iterator[Path]:
    """Build a directory in a temporary sibling and rename it to ``path`` on success.

    Yields the temporary directory to fill. On an exception the temporary directory is removed and
    ``path`` is left as it was. With ``replace=True`` an existing ``path`` is replaced (the old
    tree is moved aside first, then deleted); with ``replace=False`` an existing ``path`` raises
    ``FileExistsError`` at rename time, which makes the rename usable as an atomic claim.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        if replace and target.exists():
            old = Path(
                tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent)
            )
            os.rename(target, old / "tree")
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.rename(tmp, target)
            except OSError as exc:
                if target.exists():
                    raise FileExistsError(f"{target}: already exists") from exc
                raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def prepare_output_directory(path: str | os.PathLike[str]) -> Path:
    """Return ``path`` as a Path after checking it is absent or an empty directory.

    Steps write outputs through :func:`atomic_directory`; this check gives a clear error before
    any work is done when the caller points at a non-empty directory.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{target}: exists and is not a directory")
    return target
