"""Tables in batches: reading CSV/Parquet sources and writing partitioned Parquet, in memory
bounded by a batch, never by the table.

**Reading.** :func:`iter_table` yields a CSV or Parquet file (a local path or an ``s3://`` URI) as
pandas frames of about :data:`BATCH_ROWS` rows, read with pyarrow's streaming readers. Column
types are fixed by the first batch, as pandas would infer them from the whole file: a later
batch that needs a wider type (an integer column that turns out to hold ``1.5`` or a null, a
number column that holds text) raises :class:`Promote`, and the caller reads again from the start
with that column widened (``int64`` -> ``float64`` -> ``object``), so the result equals
``pandas.read_csv`` of the whole file. A file is re-read at most once per widened column.

**Writing.** :class:`PartWriter` writes a dataset's rows as ``part-00000.parquet``,
``part-00001.parquet``, ... of :data:`PART_ROWS` rows each, in row groups of
:data:`ROW_GROUP_ROWS` rows. Files and row groups are cut by row count only, so the bytes depend
only on the sequence of rows, never on how the source happened to be batched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mlp_common.step import StepError

BATCH_ROWS = 8_192
"""Rows per batch read (about 4 MB for 65 float64 columns)."""
CSV_BLOCK_BYTES = 1 << 20
"""Bytes of CSV text per batch read."""
ROW_GROUP_ROWS = 32_768
PART_ROWS = 32 * ROW_GROUP_ROWS
"""Rows per Parquet part file (1,048,576)."""
PART_NAME = "part-{index:05d}.parquet"
PART_PATTERN = re.compile(r"^part-\d{5}\.parquet$")
WIDER = {"int": "float64", "float": "object", "bool": "object", "other": "object"}


class Promote(Exception):
    """A batch needs wider column types than the batches before it: read again with these."""

    def __init__(self, columns: dict[str, str]) -> None:
        super().__init__(f"widen columns {columns}")
        self.columns = columns


def _family(dtype: Any) -> str:
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    return "other"


def conform(batch: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    """``batch`` with the column types ``dtypes`` (fixed by the first batch); raises
    :class:`Promote` when a column needs a wider type than ``dtypes`` allows."""
    if list(batch.columns) != list(dtypes):
        raise StepError(f"columns changed between batches: {list(batch.columns)}")
    widen: dict[str, str] = {}
    for name, dtype in dtypes.items():
        have = batch[name].dtype
        if str(have) == dtype:
            continue
        want, got = _family(dtype), _family(have)
        if want == "float" and got in ("int", "bool") or want == "other":
            continue  # representable: cast below
        if got == "other" and batch[name].isna().all():
            continue  # an all-null batch of a typed column
        widen[name] = "float64" if {want, got} <= {"int", "float"} else "object"
    if widen:
        raise Promote(widen)
    return batch.astype(dtypes) if dict(batch.dtypes.astype(str)) != dtypes else batch


def _arrow_type(dtype: str) -> pa.DataType:
    return pa.float64() if dtype == "float64" else pa.string()


def _csv_batches(uri: str, overrides: dict[str, str]) -> Iterator[pd.DataFrame]:
    import pyarrow.csv as pacsv

    from mlp_common.storage import filesystem

    fs, path = filesystem(uri)
    sep = "\t" if uri.lower().endswith(".tsv") else ","
    convert = pacsv.ConvertOptions(
        column_types={name: _arrow_type(dtype) for name, dtype in overrides.items()},
        strings_can_be_null=True,
    )
    with fs.open(path, "rb", compression="infer") as handle:
        reader = pacsv.open_csv(
            handle,
            read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(delimiter=sep),
            convert_options=convert,
        )
        names = reader.schema.names
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as error:
                found = re.search(r"column #(\d+)", str(error))
                if found is None:
                    raise
                name = names[int(found.group(1))]
                current = str(reader.schema.field(name).type)
                raise Promote({name: "float64" if current == "int64" else "object"}) from error
            yield batch.to_pandas()


def _parquet_batches(uri: str) -> Iterator[pd.DataFrame]:
    from mlp_common.storage import filesystem

    fs, path = filesystem(uri)
    with fs.open(path, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            yield pa.Table.from_batches([batch]).to_pandas()


def iter_table(uri: str, fmt: str, overrides: dict[str, str]) -> Iterator[pd.DataFrame]:
    """The batches of the table at ``uri`` (``csv`` or ``parquet``), ``overrides`` naming
    columns already widened by an earlier :class:`Promote`. Unreadable input is a StepError."""
    try:
        batches = _csv_batches(uri, overrides) if fmt == "csv" else _parquet_batches(uri)
        for batch in batches:
            yield batch.astype(overrides) if overrides else batch
    except (pa.ArrowException, ValueError, OSError) as error:
        raise StepError(f"{uri}: cannot read as {fmt}: {error}") from error


def rebatch(frames: Iterable[pd.DataFrame], rows: int = BATCH_ROWS) -> Iterator[pd.DataFrame]:
    """``frames`` cut into batches of at most ``rows`` rows (one large frame becomes several)."""
    for frame in frames:
        for start in range(0, len(frame), rows):
            yield frame.iloc[start : start + rows]


class PartWriter:
    """Rows in, ``part-NNNNN.parquet`` files out (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files: list[str] = []
        self.rows = 0
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._part_rows = 0
        self._schema: pa.Schema | None = None

    def write(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False, schema=self._schema)
        if self._schema is None:
            self._schema = table.schema
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        table = pa.concat_tables(self._pending) if self._pending else None
        self._pending, self._pending_rows = [], 0
        if table is None:
            return
        start = 0
        while table.num_rows - start >= ROW_GROUP_ROWS or (final and start < table.num_rows):
            size = min(ROW_GROUP_ROWS, table.num_rows - start)
            self._write_group(table.slice(start, size))
            start += size
        if start < table.num_rows:
            rest = table.slice(start)
            self._pending, self._pending_rows = [rest], rest.num_rows

    def _write_group(self, group: pa.Table) -> None:
        if self._writer is None:
            name = PART_NAME.format(index=len(self.files))
            self.files.append(name)
            self._writer = pq.ParquetWriter(self.directory / name, group.schema)
        self._writer.write_table(group, row_group_size=ROW_GROUP_ROWS)
        self._part_rows += group.num_rows
        if self._part_rows >= PART_ROWS:
            self._writer.close()
            self._writer, self._part_rows = None, 0

    def close(self, empty: pd.DataFrame | None = None) -> list[str]:
        """Finish the last part; ``empty`` (a frame with the columns) writes one empty part when
        no row came, so a table with no rows still has a schema on disk."""
        self._flush(final=True)
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if not self.files and empty is not None:
            name = PART_NAME.format(index=0)
            empty.iloc[:0].to_parquet(self.directory / name, index=False)
            self.files.append(name)
        return list(self.files)


def iter_parquet(
    paths: Iterable[Path], columns: list[str] | None = None, rows: int = BATCH_ROWS
) -> Iterator[pd.DataFrame]:
    """The rows of Parquet files, in order, as frames of at most ``rows`` rows."""
    for path in paths:
        parquet = pq.ParquetFile(path, pre_buffer=False)  # one row group in memory at a time
        for batch in parquet.iter_batches(batch_size=rows, columns=columns):
            yield pa.Table.from_batches([batch]).to_pandas()
