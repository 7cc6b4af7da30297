"""Ingest: read a source in batches and write a versioned dataset directory.

The source is read in batches (Arrow record batches for CSV and Parquet, local or on S3; a
server-side cursor for SQL) and written as partitioned Parquet while its content hash is
computed, in one pass and in memory bounded by a batch (:mod:`mlp_common.dataset`).

Sources (``--source``):

- ``sklearn:<name>``: a dataset bundled with scikit-learn (``wine``, ``breast_cancer``,
  ``digits``, ``iris``); offline, the embedded default is ``sklearn:digits`` (1,797 rows: enough
  held-out rows, 360, for the promotion gate's paired test to mean something);
- a CSV or Parquet file: a local path or an ``s3://`` URI (S3-compatible stores via
  ``AWS_ENDPOINT_URL``);
- a SQLAlchemy URL (``sqlite:///path/to.db`` is the embedded default engine) with ``--query``.

Outputs: a dataset directory (``--output``) and/or an immutable, content-addressed snapshot
``<snapshot root>/<name>/<hash>/`` (``--snapshot-root``); both depend only on the data read, never
on when or from where it was read (see :mod:`mlp_common.dataset`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlp_common.dataset import (
    Batches,
    DatasetInfo,
    frame_batches,
    materialize_snapshot,
    read_table,
    table_batches,
    write_dataset,
    write_snapshot,
)
from mlp_common.faults import maybe_fail
from mlp_common.step import DataError, StepError, TransientError

DEFAULT_SOURCE = "sklearn:digits"
SKLEARN_DATASETS = ("wine", "breast_cancer", "digits", "iris")
SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "oracle")


@dataclass(frozen=True)
class Source:
    """A parsed ``--source``: ``kind`` is ``sklearn``, ``table`` or ``sql``."""

    kind: str
    location: str
    query: str | None = None
    fmt: str | None = None


def parse_source(source: str, *, query: str | None = None, fmt: str | None = None) -> Source:
    """Classify ``source``; a SQL URL needs ``query``, other sources must not have one."""
    if source.startswith("sklearn:"):
        name = source.split(":", 1)[1]
        if name not in SKLEARN_DATASETS:
            raise StepError(
                f"--source {source}: unknown bundled dataset; expected one of "
                + ", ".join(f"sklearn:{n}" for n in SKLEARN_DATASETS)
            )
        kind = "sklearn"
    elif source.split(":", 1)[0].split("+", 1)[0] in SQL_SCHEMES:
        if not query:
            raise StepError(f"--source {source}: a SQL source needs --query")
        kind = "sql"
    else:
        kind = "table"
    if kind != "sql" and query:
        raise StepError(f"--query is only valid with a SQL source, not {source}")
    return Source(kind=kind, location=source, query=query, fmt=fmt)


def snake_case(name: str) -> str:
    """Column names as identifiers: ``od280/od315_of_diluted_wines`` -> ``od280_od315_of_...``."""
    cleaned = re.sub(r"[^0-9a-zA-Z]+", "_", name.strip()).strip("_").lower()
    return cleaned or "column"


def load_sklearn(name: str) -> tuple[pd.DataFrame, str]:
    """A bundled scikit-learn dataset as a table with a ``target`` column (no network access)."""
    from sklearn import datasets

    loader = getattr(datasets, f"load_{name}")
    bunch = loader(as_frame=True)
    frame = bunch.frame.copy()
    frame.columns = [snake_case(str(c)) for c in frame.columns]
    return frame, "target"


SQL_CHUNK_ROWS = 32_768
"""Rows fetched per round trip from the server-side cursor."""


def sql_batches(url: str, query: str) -> Batches:
    """``query``'s rows through SQLAlchemy, streamed from a server-side cursor
    (``stream_results``) in chunks of :data:`SQL_CHUNK_ROWS`. Connection failures are transient
    (retried by the pipeline); SQL errors (bad table or column) are not."""
    if url.startswith("sqlite:///"):
        db_path = url[len("sqlite:///") :]
        if db_path and db_path != ":memory:" and not Path(db_path).exists():
            raise StepError(f"--source {url}: no such SQLite file {db_path}")

    def read(overrides: dict[str, str]) -> Iterator[pd.DataFrame]:
        import sqlalchemy
        from sqlalchemy import exc as sa_exc

        try:
            engine = sqlalchemy.create_engine(url)
        except (sa_exc.ArgumentError, ImportError) as error:
            raise StepError(f"--source {url}: not a usable SQLAlchemy URL: {error}") from error
        try:
            with engine.connect() as connection:
                streaming = connection.execution_options(stream_results=True)
                for chunk in pd.read_sql_query(
                    sqlalchemy.text(query), streaming, chunksize=SQL_CHUNK_ROWS
                ):
                    yield chunk.astype(overrides) if overrides else chunk
        except sa_exc.OperationalError as error:
            message = str(error.orig) if error.orig is not None else str(error)
            if "no such table" in message or "no such column" in message or "syntax" in message:
                raise StepError(f"--query failed: {message}") from error
            raise TransientError(f"--source {url}: {message}") from error
        except sa_exc.SQLAlchemyError as error:
            raise StepError(f"--query failed: {error}") from error
        finally:
            engine.dispose()

    return read


def load_sql(url: str, query: str) -> pd.DataFrame:
    """``query``'s result in memory (small data; :func:`sql_batches` streams it)."""
    chunks = list(sql_batches(url, query)({}))
    return pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame()


def batches(source: Source) -> tuple[Batches, str | None]:
    """The source as :data:`~mlp_common.dataset.Batches` (read in batches, never whole; a bundled
    dataset is small and in memory) and its natural target column, if any."""
    if source.kind == "sklearn":
        frame, target = load_sklearn(source.location.split(":", 1)[1])
        return frame_batches(frame), target
    if source.kind == "sql":
        assert source.query is not None
        return sql_batches(source.location, source.query), None
    return table_batches(source.location, source.fmt), None


def load(source: Source) -> tuple[pd.DataFrame, str | None]:
    """Read the whole source into memory (small data). Returns the table and the source's
    natural target column, if any."""
    if source.kind == "sklearn":
        return load_sklearn(source.location.split(":", 1)[1])
    if source.kind == "sql":
        assert source.query is not None
        return load_sql(source.location, source.query), None
    return read_table(source.location, source.fmt), None


def default_name(source: Source) -> str:
    """The dataset name when none is given: the bundled dataset's name, else ``dataset``."""
    return source.location.split(":", 1)[1] if source.kind == "sklearn" else "dataset"


def ingest(
    source: Source,
    output: str | Path | None,
    *,
    name: str,
    target: str | None,
    snapshot_root: str | None = None,
) -> DatasetInfo:
    """Load ``source``; write it as a dataset directory at ``output`` and/or as a snapshot under
    ``snapshot_root`` (the returned description then carries the snapshot's ``uri``)."""
    if output is None and snapshot_root is None:
        raise StepError("nothing to write: give --output and/or --snapshot-root")
    maybe_fail("ingest")
    read, natural_target = batches(source)
    chosen = target or natural_target
    if chosen is None:
        next(iter(read({})), None)  # a source that cannot be read says so first
        raise StepError(f"--source {source.location}: name the label column with --target")
    try:
        if snapshot_root is None:
            assert output is not None  # checked above
            return write_dataset(output, read, name=name, target=chosen)
        info = write_snapshot(snapshot_root, read, name=name, target=chosen)
    except DataError as error:
        if str(error) == "no rows":
            raise StepError(f"--source {source.location}: no rows") from error
        raise
    if output is not None:
        assert info.uri is not None
        materialize_snapshot(info.uri, output)
    return info
