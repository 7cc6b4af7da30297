"""Dataset I/O and the versioned dataset directory.

A dataset directory (what ``ingest`` writes and every later step reads) holds::

    part-00000.parquet ...  the table in row order, columns in a stable order, target included
                            (:mod:`mlp_common.tables`: 1,048,576 rows a part)
    dataset.json     {"name", "version", "content_hash", "rows", "columns": {name: dtype},
                      "target", "files": {"part-00000.parquet": "sha256:<hex of the file's bytes>",
                      ...}, "uri": the snapshot URI, when it is one}

``content_hash`` is ``sha256:<hex>`` over the column names and dtypes and the multiset of rows
(:mod:`mlp_common.content`), computed in the same single pass that writes the parts, so the same
data gives the same hash on any machine, whatever file format it came from, in whatever row order
and however it is split into files. ``version`` is the first 12 hex digits of the hash.
``dataset.json`` depends only on the content: no timestamps and no source (the source and query
are run inputs; the registry records them, redacted, with each model version). Directories
written before partitioning hold one ``data.parquet`` hashed as a sorted CSV; they still read
and verify (:func:`legacy_content_hash`).

Every step reads a dataset in batches (:func:`iter_dataset`), so no step needs memory in
proportion to the data; :func:`read_dataset` reads it whole, for small data.

**Snapshots.** :func:`write_snapshot` stores a dataset immutably and content-addressed at
``<root>/<name>/<hex of content_hash>/`` (a local path or an ``s3://`` URI). An existing snapshot
is never rewritten: the same content ingested again returns the same URI and the same bytes, so a
step whose only input is that URI (KFP caches on inputs) is cached exactly when the data did not
change. ``files`` holds the sha256 of each part as written, so reading the URI back can be
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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from mlp_common.content import ContentHasher, content_hash_of, frame_dtypes
from mlp_common.files import atomic_directory, read_json, write_json_atomic
from mlp_common.step import DataError, StepError
from mlp_common.tables import PartWriter, Promote, conform, iter_parquet, iter_table, rebatch

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
    """Read a whole CSV or Parquet table (small data; :func:`table_batches` reads in batches)."""
    batches = table_batches(uri, fmt)
    overrides: dict[str, str] = {}
    while True:
        try:
            frames: list[pd.DataFrame] = []
            dtypes: dict[str, str] | None = None
            for batch in batches(overrides):
                dtypes = dtypes or {str(c): str(batch[c].dtype) for c in batch.columns}
                frames.append(conform(batch, dtypes))
            break
        except Promote as promote:
            overrides |= promote.columns
    if not frames:
        raise StepError(f"{uri}: no rows")
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def table_batches(uri: str, fmt: str | None = None) -> Batches:
    """The CSV or Parquet table at ``uri`` (a local path or an ``s3://`` URI) as
    :data:`Batches`: read in batches, never whole."""
    fmt = fmt or infer_format(uri)
    if fmt not in FORMATS:
        raise StepError(f"{uri}: unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if "://" not in uri and not Path(uri).exists():
        raise StepError(f"{uri}: no such file")
    return lambda overrides: iter_table(uri, fmt, overrides)


def content_hash(frame: pd.DataFrame) -> str:
    """``sha256:<hex>`` of the table's column names, dtypes and rows, independent of row order
    (:mod:`mlp_common.content`; batches hash the same through :class:`ContentHasher`)."""
    return content_hash_of([frame], frame_dtypes(frame))


def legacy_content_hash(frame: pd.DataFrame) -> str:
    """The hash of snapshots written before partitioning (a single ``data.parquet``): sha256 of
    the canonical CSV, rows sorted. Kept only to verify those snapshots."""
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


Batches = Callable[[dict[str, str]], Iterable[pd.DataFrame]]
"""A source read in batches: called with the columns to widen (:class:`Promote`), it reads the
source from the start."""


def frame_batches(frame: pd.DataFrame) -> Batches:
    """An in-memory table as a :data:`Batches` source."""
    return lambda overrides: [frame.astype(overrides)] if overrides else [frame]


def _fill(directory: Path, batches: Batches, *, name: str, target: str) -> DatasetInfo:
    """Write the parts and ``dataset.json`` of ``batches`` into ``directory`` in one pass,
    re-reading the source when a batch widens a column type."""
    overrides: dict[str, str] = {}
    while True:
        try:
            return _fill_once(directory, batches(overrides), name=name, target=target)
        except Promote as promote:
            for stale in directory.iterdir():
                stale.unlink()
            if not set(promote.columns.items()) - set(overrides.items()):
                raise StepError(f"column types keep changing: {promote.columns}") from promote
            overrides |= promote.columns


def _fill_once(
    directory: Path, batches: Iterable[pd.DataFrame], *, name: str, target: str
) -> DatasetInfo:
    writer = PartWriter(directory)
    dtypes: dict[str, str] | None = None
    hasher: ContentHasher | None = None
    first: pd.DataFrame | None = None
    for batch in rebatch(batches):
        if dtypes is None:
            if target not in batch.columns:
                raise DataError(
                    f"target column {target!r} not in the data (columns: {list(batch.columns)})"
                )
            first = batch.iloc[:0]
            dtypes = {str(c): str(batch[c].dtype) for c in batch.columns}
            hasher = ContentHasher(dtypes.items())
        batch = conform(batch.reset_index(drop=True), dtypes)
        assert hasher is not None
        hasher.update(batch)
        writer.write(batch)
    if dtypes is None or hasher is None or hasher.rows == 0:
        raise DataError("no rows")
    files = writer.close(first)
    digest = f"sha256:{hasher.hexdigest()}"
    info = DatasetInfo(
        name=name,
        version=digest.split(":", 1)[1][:12],
        content_hash=digest,
        rows=hasher.rows,
        columns=dtypes,
        target=target,
        files={part: file_sha256(directory / part) for part in files},
    )
    write_json_atomic(directory / META_FILE, info.to_dict())
    return info


def write_dataset(
    directory: str | os.PathLike[str],
    frame: pd.DataFrame | Batches,
    *,
    name: str,
    target: str,
    source: str | None = None,
) -> DatasetInfo:
    """Write a table (a frame or :data:`Batches`) as a dataset directory, atomically (temp dir,
    then rename), in memory bounded by a batch.

    ``source`` is accepted for older callers and not recorded: the directory depends only on the
    content (the registry records the source of a training run)."""
    del source
    batches = frame_batches(frame) if isinstance(frame, pd.DataFrame) else frame
    with atomic_directory(directory) as tmp:
        info = _fill(tmp, batches, name=name, target=target)
    return info


SNAPSHOT_NAME = re.compile(r"^[a-z0-9]([-_a-z0-9]*[a-z0-9])?$")


def snapshot_uri(root: str, info: DatasetInfo) -> str:
    """``<root>/<name>/<hex>/``: where the snapshot of ``info``'s content lives."""
    if not SNAPSHOT_NAME.match(info.name):
        raise StepError(f"dataset name {info.name!r}: must be lowercase a-z, 0-9, '-', '_'")
    return f"{root.rstrip('/')}/{info.name}/{info.content_hash.split(':', 1)[1]}/"


def write_snapshot(
    root: str, frame: pd.DataFrame | Batches, *, name: str, target: str
) -> DatasetInfo:
    """Store a table (a frame or :data:`Batches`) immutably at its content address under
    ``root``; return its description (``uri`` set). The table is written once, to a staging
    directory, while its hash is computed; an existing snapshot of the same content is reused,
    never rewritten."""
    from mlp_common.storage import is_remote, local_path, publish_directory

    if not SNAPSHOT_NAME.match(name):
        raise StepError(f"dataset name {name!r}: must be lowercase a-z, 0-9, '-', '_'")
    batches = frame_batches(frame) if isinstance(frame, pd.DataFrame) else frame
    staging_parent = None if is_remote(root) else local_path(root)
    if staging_parent is not None:
        staging_parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".snapshot.", dir=staging_parent))
    try:
        info = _fill(staging, batches, name=name, target=target)
        uri = snapshot_uri(root, info)
        existing = read_snapshot_info(uri)
        if existing is None:
            write_json_atomic(staging / META_FILE, replace(info, uri=uri).to_dict())
            publish_directory(staging, uri, marker=META_FILE)
            existing = read_snapshot_info(uri)
            assert existing is not None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
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


def data_files(directory: Path, info: DatasetInfo) -> list[Path]:
    """The Parquet files of a dataset directory, in row order."""
    names = sorted(info.files) or [DATA_FILE]
    return [directory / name for name in names]


def iter_dataset(
    directory: str | os.PathLike[str], columns: list[str] | None = None
) -> tuple[DatasetInfo, Iterator[pd.DataFrame]]:
    """A dataset directory's description (``columns`` in the files' order) and its rows in
    batches (memory bounded by a batch)."""
    root = Path(directory)
    info = _read_info(root)
    info = replace(info, columns={c: info.columns[c] for c in _column_order(root, info)})
    return info, iter_parquet(data_files(root, info), columns)


def _column_order(directory: Path, info: DatasetInfo) -> list[str]:
    """The column order of the files (``dataset.json`` sorts its keys)."""
    import pyarrow.parquet as pq

    return list(pq.read_schema(data_files(directory, info)[0]).names)


def stored_content_hash(directory: Path, info: DatasetInfo) -> str:
    """The content hash recomputed from the files on disk, in one streaming pass."""
    if DATA_FILE in info.files:  # written before partitioning, hashed as one sorted CSV
        return legacy_content_hash(pd.read_parquet(directory / DATA_FILE))
    order = _column_order(directory, info)
    files = data_files(directory, info)
    return content_hash_of(iter_parquet(files), [(c, info.columns[c]) for c in order])


def verify_snapshot(uri: str) -> DatasetInfo:
    """Read the snapshot at ``uri`` back and check it: the bytes of every file have the recorded
    sha256 and the table has the recorded content hash. Raises :class:`DataError` otherwise."""
    from mlp_common.storage import download_directory, is_remote, local_path

    directory = download_directory(uri) if is_remote(uri) else local_path(uri)
    info = _read_info(directory)
    for name, recorded in sorted(info.files.items()):
        actual = file_sha256(directory / name)
        if actual != recorded:
            raise DataError(f"{uri}{name}: sha256 {actual}, recorded {recorded}")
    stored = stored_content_hash(directory, info)
    if stored != info.content_hash:
        raise DataError(f"{uri}: table hash {stored}, recorded {info.content_hash}")
    return info


def fetch_checked(location: str, files: dict[str, str], where: str, recorded: str) -> Path:
    """A local copy of the directory at ``location``, every file of ``files`` checked against
    its sha256 (``where``: whose data, ``recorded``: who recorded the hashes, for the error)."""
    from mlp_common.storage import localize_directory

    try:
        local = localize_directory(location)
    except (OSError, ValueError) as exc:
        raise StepError(f"{where}: cannot read its data at {location}: {exc}") from exc
    for name, expected in sorted(files.items()):
        path = local / name
        if not path.is_file():
            raise DataError(f"{where}: {location}/{name} is gone")
        actual = file_sha256(path)
        if actual != expected:
            raise DataError(f"{where}: {location}/{name} has {actual}, {recorded} {expected}")
    return local


def _read_info(root: Path) -> DatasetInfo:
    meta = root / META_FILE
    if not meta.is_file():
        raise StepError(f"{root}: not a dataset directory (no {META_FILE})")
    return DatasetInfo.from_dict(read_json(meta))


def read_dataset(directory: str | os.PathLike[str]) -> tuple[pd.DataFrame, DatasetInfo]:
    """Read a whole dataset directory written by :func:`write_dataset` into memory (small data;
    :func:`iter_dataset` reads it in batches)."""
    root = Path(directory)
    info = _read_info(root)
    frames = [pd.read_parquet(path) for path in data_files(root, info)]
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return frame, info
