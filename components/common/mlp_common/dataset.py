"""Dataset I/O and the versioned dataset directory.

A dataset directory (what ``ingest`` writes and every later step reads) holds::

    data.parquet     the table, columns in a stable order, target column included
    dataset.json     {"name", "version", "content_hash", "rows", "columns": {name: dtype},
                      "target", "source", "created_at"}

``content_hash`` is ``sha256:<hex>`` over a canonical CSV rendering of the table (column names,
dtypes and values; float values at full precision), so the same data gives the same hash on any
machine, whatever file format it came from. ``version`` is the first 12 hex digits of the hash.

Tables are read from a local path or an ``s3://`` URI (S3-compatible stores such as MinIO: set
``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` in the environment).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlp_common.files import atomic_directory, read_json, write_json_atomic
from mlp_common.provenance import utc_now
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
    source: str
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "content_hash": self.content_hash,
            "rows": self.rows,
            "columns": dict(self.columns),
            "target": self.target,
            "source": self.source,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> DatasetInfo:
        return cls(
            name=str(document["name"]),
            version=str(document["version"]),
            content_hash=str(document["content_hash"]),
            rows=int(document["rows"]),
            columns={str(k): str(v) for k, v in document["columns"].items()},
            target=str(document["target"]),
            source=str(document["source"]),
            created_at=str(document["created_at"]),
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
    """``sha256:<hex>`` of the table's canonical CSV rendering plus its dtypes."""
    digest = hashlib.sha256()
    header = ",".join(f"{name}:{frame[name].dtype}" for name in frame.columns)
    digest.update(header.encode("utf-8") + b"\n")
    digest.update(frame.to_csv(index=False, float_format="%.17g", lineterminator="\n").encode())
    return f"sha256:{digest.hexdigest()}"


def write_dataset(
    directory: str | os.PathLike[str],
    frame: pd.DataFrame,
    *,
    name: str,
    target: str,
    source: str,
) -> DatasetInfo:
    """Write ``frame`` as a dataset directory, atomically (temp dir, then rename)."""
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
        source=source,
        created_at=utc_now(),
    )
    with atomic_directory(directory) as tmp:
        frame.to_parquet(tmp / DATA_FILE, index=False)
        write_json_atomic(tmp / META_FILE, info.to_dict())
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
