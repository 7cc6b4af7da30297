"""Dataset I/O and the versioned dataset directory.

A dataset directory (what ``ingest`` writes and every later step reads) holds::

    data.parquet     the table, columns in a stable order, target column included
    dataset.json     {"name", "version", "content_hash", "rows", "columns": {name: dtype},
                      "target", "files": {"data.parquet": "sha256:<hex of the file's bytes>"},
                      "uri": the snapshot URI, when it is one}

``content_hash`` is ``sha256:<hex>`` over a canonical CSV rendering of the table (column names,
dtypes and values; float values at full precision; rows sorted), so the same data gives the same
hash on any machine, whatever file format it came from and in whatever row order. ``version`` is
the first 12 hex digits of the hash.
``dataset.json`` depends only on the content: no timestamps and no source (the source and query
are run inputs; the registry records them, redacted, with each model version).

**Snapshots.** :func:`write_snapshot` stores a dataset immutably and content-addressed at
``<root>/<name>/<hex of content_hash>/`` (a local path or an ``s3://`` URI). An existing snapshot
is never rewritten: the same content ingested again returns the same URI and the same bytes, so a
step whose only input is that URI (KFP caches on inputs) is cached exactly when the data did not
change. ``files`` holds the sha256 of ``data.parquet`` as written, so reading the URI back can be
checked byte for byte (:func:`verify_snapshot`).

Tables are read from a local path or an ``s3://`` URI (S3-compatible stores such as MinIO: set
``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` in the environment).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from mlp_common.files import atomic_directory, read_json, write_json_atomic
from mlp_common.step import DataError, StepError

DATA_FILE = "data.parquet"
META_FILE = "dataset.json"
FORMATS = ("csv", "parquet")


@dataclass(frozen=True)
class DatasetInfo:
    """The metadata of a dataset directory (``dataset.json``)."""

    name: str
    version: str
    content_hash: str
    rows: int
    columns: dict[str, str]
    target: str
    files: dict[str, str] = field(default_factory=dict)
    uri: str | None = None

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "content_hash": self.content_hash,
            "rows": self.rows,
            "columns": dict(self.columns),
            "target": self.target,
            "files": dict(self.files),
        }
        if self.uri is not None:
            document["uri"] = self.uri
        return document

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> DatasetInfo:
        return cls(
            name=str(document["name"]),
            version=str(document["version"]),
            content_hash=str(document["content_hash"]),
            rows=int(document["rows"]),
            columns={str(k): str(v) for k, v in document["columns"].items()},
            target=str(document["target"]),
            files={str(k): str(v) for k, v in document.get("files", {}).items()},
            uri=None if document.get("uri") is None else str(document["uri"]),
        )


def storage_options(uri: str) -> dict[str, Any] | None:
    """fsspec options for ``uri``: the S3 endpoint from ``AWS_ENDPOINT_URL`` for ``s3://``."""
    if not uri.startswith("s3://"):
        return None
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("MLP_S3_ENDPOINT_URL")
    return {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}


def infer_format(uri: str) -> str:
    """``csv`` or ``parquet`` from the URI suffix (.csv, .csv.gz, .tsv, .parquet, .pq)."""
    lowered = uri.lower()
    if lowered.endswith((".csv", ".csv.gz", ".tsv")):
        return "csv"
    if lowered.endswith((".parquet", ".pq")):
        return "parquet"
    raise StepError(f"{uri}: cannot tell the format from the name; pass --format csv|parquet")


def read_table(uri: str, fmt: str | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet table from a local path or an ``s3://`` URI."""
    fmt = fmt or infer_format(uri)
    if fmt not in FORMATS:
        raise StepError(f"{uri}: unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if "://" not in uri and not Path(uri).exists():
        raise StepError(f"{uri}: no such file")
    options = storage_options(uri)
    try:
        if fmt == "csv":
            sep = "\t" if uri.lower().endswith(".tsv") else ","
            return pd.read_csv(uri, sep=sep, storage_options=options)
        return pd.read_parquet(uri, storage_options=options)
    except (ValueError, OSError) as exc:
        raise StepError(f"{uri}: cannot read as {fmt}: {exc}") from exc


def content_hash(frame: pd.DataFrame) -> str:
    """``sha256:<hex>`` of the table's column names and dtypes and its rows in canonical CSV
    (floats at full precision), the rows sorted: the same rows in any order hash the same."""
    digest = hashlib.sha256()
    header = ",".join(f"{name}:{frame[name].dtype}" for name in frame.columns)
    digest.update(header.encode("utf-8") + b"\n")
    body = frame.to_csv(index=False, header=False, float_format="%.17g", lineterminator="\x1e")
    for row in sorted(body.split("\x1e")[:-1]):
        digest.update(row.encode("utf-8") + b"\n")
    return f"sha256:{digest.hexdigest()}"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """``sha256:<hex>`` of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def describe(frame: pd.DataFrame, *, name: str, target: str) -> tuple[pd.DataFrame, DatasetInfo]:
    """The canonical frame (fresh index) and its content-only description (no file hashes yet)."""
    if target not in frame.columns:
        raise DataError(
            f"target column {target!r} not in the data (columns: {list(frame.columns)})"
        )
    frame = frame.reset_index(drop=True)
    digest = content_hash(frame)
    info = DatasetInfo(
        name=name,
        version=digest.split(":", 1)[1][:12],
        content_hash=digest,
        rows=len(frame),
        columns={str(col): str(frame[col].dtype) for col in frame.columns},
        target=target,
    )
    return frame, info


def _fill(directory: Path, frame: pd.DataFrame, info: DatasetInfo) -> DatasetInfo:
    frame.to_parquet(directory / DATA_FILE, index=False)
    info = replace(info, files={DATA_FILE: file_sha256(directory / DATA_FILE)})
    write_json_atomic(directory / META_FILE, info.to_dict())
    return info


def write_dataset(
    directory: str | os.PathLike[str],
    frame: pd.DataFrame,
    *,
    name: str,
    target: str,
    source: str | None = None,
) -> DatasetInfo:
    """Write ``frame`` as a dataset directory, atomically (temp dir, then rename).

    ``source`` is accepted for older callers and not recorded: the directory depends only on the
    content (the registry records the source of a training run)."""
    del source
    frame, info = describe(frame, name=name, target=target)
    with atomic_directory(directory) as tmp:
        info = _fill(tmp, frame, info)
    return info


SNAPSHOT_NAME = re.compile(r"^[a-z0-9]([-_a-z0-9]*[a-z0-9])?$")


def snapshot_uri(root: str, info: DatasetInfo) -> str:
    """``<root>/<name>/<hex>/``: where the snapshot of ``info``'s content lives."""
    if not SNAPSHOT_NAME.match(info.name):
        raise StepError(f"dataset name {info.name!r}: must be lowercase a-z, 0-9, '-', '_'")
    return f"{root.rstrip('/')}/{info.name}/{info.content_hash.split(':', 1)[1]}/"


def write_snapshot(root: str, frame: pd.DataFrame, *, name: str, target: str) -> DatasetInfo:
    """Store ``frame`` immutably at its content address under ``root``; return its description
    (``uri`` set). An existing snapshot of the same content is reused, never rewritten."""
    from mlp_common.storage import is_remote, local_path, publish_directory

    frame, info = describe(frame, name=name, target=target)
    uri = snapshot_uri(root, info)
    info = replace(info, uri=uri)
    existing = read_snapshot_info(uri)
    if existing is None:
        staging_parent = None if is_remote(root) else local_path(root)
        if staging_parent is not None:
            staging_parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".snapshot.", dir=staging_parent))
        try:
            info = _fill(staging, frame, info)
            publish_directory(staging, uri, marker=META_FILE)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        existing = read_snapshot_info(uri)
        assert existing is not None
    if existing.target != target or existing.content_hash != info.content_hash:
        raise StepError(
            f"{uri}: holds target {existing.target!r} and {existing.content_hash}; "
            f"refusing to reuse it for target {target!r}"
        )
    return existing


def materialize_snapshot(uri: str, output: str | os.PathLike[str]) -> DatasetInfo:
    """Copy the snapshot at ``uri`` into the dataset directory ``output`` (atomically), checked
    byte for byte against its recorded hashes first."""
    from mlp_common.storage import download_directory, is_remote, local_path

    info = verify_snapshot(uri)
    source = download_directory(uri, immutable=True) if is_remote(uri) else local_path(uri)
    with atomic_directory(output) as tmp:
        for name in (*sorted(info.files), META_FILE):
            shutil.copy2(source / name, tmp / name)
    return info


def read_snapshot_info(uri: str) -> DatasetInfo | None:
    """The ``dataset.json`` of a snapshot, or None when no complete snapshot is there."""
    from mlp_common.storage import filesystem, is_remote, local_path

    meta = f"{uri.rstrip('/')}/{META_FILE}"
    if is_remote(uri):
        fs, path = filesystem(meta)
        fs.invalidate_cache()
        if not fs.isfile(path):
            return None
        return DatasetInfo.from_dict(json.loads(fs.cat_file(path)))
    local = local_path(meta)
    return DatasetInfo.from_dict(read_json(local)) if local.is_file() else None


def verify_snapshot(uri: str) -> DatasetInfo:
    """Read the snapshot at ``uri`` back and check it: the bytes of every file have the recorded
    sha256 and the table has the recorded content hash. Raises :class:`DataError` otherwise."""
    from mlp_common.storage import download_directory, is_remote, local_path

    directory = download_directory(uri) if is_remote(uri) else local_path(uri)
    frame, info = read_dataset(directory)
    for name, recorded in sorted(info.files.items()):
        actual = file_sha256(directory / name)
        if actual != recorded:
            raise DataError(f"{uri}{name}: sha256 {actual}, recorded {recorded}")
    if content_hash(frame) != info.content_hash:
        raise DataError(f"{uri}: table hash {content_hash(frame)}, recorded {info.content_hash}")
    return info


def read_dataset(directory: str | os.PathLike[str]) -> tuple[pd.DataFrame, DatasetInfo]:
    """Read a dataset directory written by :func:`write_dataset`."""
    root = Path(directory)
    meta = root / META_FILE
    if not meta.is_file():
        raise StepError(f"{root}: not a dataset directory (no {META_FILE})")
    info = DatasetInfo.from_dict(read_json(meta))
    frame = pd.read_parquet(root / DATA_FILE)
    return frame, info
