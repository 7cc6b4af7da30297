"""The data one training run trains on, pinned once for all its workers and restarts.

A TrainJob's workers start one by one, and JobSet restarts all of them when one fails; each start
runs the train step again. Resolved at every start, ``--data-from-registry ... --version latest``
names whatever version is newest at that moment: if the pipeline registers one in between, the
second worker, or the restart that resumes a checkpoint, trains on other data. So a run pins
its data in a file on storage every worker reads (``--data-pin``; the TrainingRuntime's
entrypoint, mlp_train.jobset, sets it to ``<MLP_WORK_DIR>/<MLP_RUN_ID>/data.json`` on the run's
work volume, beside its model and checkpoints):

- The first worker to start resolves the data as its options say (``--data``: an explicit
  preprocess output; ``--data-from-registry``: the one the named version recorded) and creates
  the pin::

      {"request": {<the options that asked>}, "location": "<where it is read>",
       "uri": "<recorded in the model's data.json>", "files": {"train.parquet": "sha256:...", ...},
       "version": <the registry version it resolved to, if any>}

  It is created by hard-linking a complete temporary file to its name, so exactly one worker
  creates it and no worker reads half of one; a worker that loses the race uses the winner's.
- Every other worker, and every worker of every restart, reads the pin instead of resolving
  again, fetches the data from ``location`` and checks each file against the pinned sha256. A
  restart resumes its BackupAndRestore checkpoint on the data that trained it, or fails naming
  the file that changed. Options that ask for other data than the pin records fail too (the pin
  is another run's).

The model's ``data.json`` records the pinned ``uri`` and ``files`` (mlp_train.data_source).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlp_common.dataset import fetch_checked
from mlp_common.files import dumps_json, read_json
from mlp_common.step import DataError, StepError

PIN_FILE = "data.json"
"""The pin's name in the run's work directory (mlp_train.jobset)."""

Resolve = Callable[[], tuple[Path, dict[str, Any]]]
"""Resolves the data now: (a local copy, the pin without ``request``)."""


def record(pin: dict[str, Any]) -> dict[str, Any]:
    """The model's ``data.json`` of a run that trained on ``pin``."""
    return {"uri": pin["uri"], "files": pin["files"]}


def create(path: Path, document: dict[str, Any]) -> bool:
    """Create ``path`` holding ``document`` unless it exists; False when it did."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o644)  # every worker reads it (mkstemp makes 0600)
            handle.write(dumps_json(document))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # fails if path exists: one creator, and only whole files
        except FileExistsError:
            return False
        except OSError as exc:
            raise StepError(
                f"--data-pin {path}: cannot create it ({exc.strerror}): the run's work "
                "directory must be a filesystem with hard links (a PersistentVolume)"
            ) from exc
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def pinned(
    path: str | os.PathLike[str], request: dict[str, str], resolve: Resolve
) -> tuple[Path, dict[str, Any]]:
    """(a local copy of, the model's ``data.json`` for) the data of the run pinned at ``path``:
    pinned now from ``resolve()`` if no worker of the run did yet (see the module doc)."""
    pin = Path(path)
    if not pin.is_file():
        local, resolved = resolve()
        document = {**resolved, "request": request}
        if create(pin, document):
            print(f"train: pinned this run's data in {pin}: {_named(document)}", file=sys.stderr)
            return local, record(document)
    try:
        found = read_json(pin)
    except (OSError, ValueError) as exc:
        raise StepError(f"--data-pin {pin}: unreadable: {exc}") from exc
    if not isinstance(found, dict) or not {"request", "location", "uri", "files"} <= set(found):
        raise StepError(f"--data-pin {pin}: not a data pin (request, location, uri, files)")
    if found["request"] != request:
        raise StepError(
            f"--data-pin {pin}: pinned for {found['request']}, but these options ask for "
            f"{request}: the pin is another run's"
        )
    where = f"--data-pin {pin}: the data this run pinned changed under it"
    try:
        local = fetch_checked(found["location"], found["files"], where, "the run pinned")
    except DataError as exc:
        raise DataError(
            f"{exc}; its checkpoints were trained on the pinned data, so it cannot resume on "
            "other data (a new TrainJob trains on the new data)"
        ) from exc
    print(f"train: the data this run pinned in {pin}: {_named(found)}", file=sys.stderr)
    return local, record(found)


def _named(pin: dict[str, Any]) -> str:
    version = f" (version {pin['version']})" if pin.get("version") is not None else ""
    return f"{pin['uri']}{version}, {len(pin['files'])} files by sha256"
