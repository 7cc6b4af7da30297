"""The split of :mod:`mlp_preprocess.core` in two passes over a dataset's batches, in memory
bounded by a batch (the step's path; :func:`mlp_preprocess.core.split` is the in-memory
definition, and a test proves both give the same rows and description).

Pass 1 reads the dataset once: each row goes to its split by its key alone
(:func:`~mlp_preprocess.core.splits_of`), and is appended, nulls and raw target kept, to a
temporary Parquet file of that split; meanwhile the class counts, the training classes and the
training split's per-feature sums (``math.fsum``) accumulate. Pass 2 reads each temporary split
back, fills nulls with the training means, maps the target to class indices and writes the final
``<split>.parquet``, accumulating the training variance and the test split's content hash.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from mlp_common.content import ContentHasher
from mlp_common.dataset import iter_dataset
from mlp_common.step import DataError
from mlp_common.tables import iter_parquet

from mlp_preprocess.core import (
    LABEL,
    SPLITS,
    check_sizes,
    describe_split,
    splits_of,
)

SPLIT_GROUP_ROWS = 16_384
"""Rows per row group of a split file: the unit training reads and shards by. Every row group
adds metadata the writer keeps until the file is closed, so groups are not made smaller."""


class SplitWriter:
    """One Parquet file written batch by batch, in row groups of :data:`SPLIT_GROUP_ROWS` rows
    (no column statistics: nothing filters on them, and they would grow the footer)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        if self._pending_rows >= SPLIT_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._pending_rows:
            return
        table = pa.concat_tables(self._pending)
        self._pending, self._pending_rows = [], 0
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema, write_statistics=False)
        self._writer.write_table(table, row_group_size=table.num_rows)

    def close(self, empty: pd.DataFrame) -> None:
        self._flush()
        if self._writer is None:
            empty.to_parquet(self.path, index=False)
        else:
            self._writer.close()


class _Totals:
    """Pass 1's accumulators."""

    def __init__(self, features: list[str]) -> None:
        self.counts = pd.Series(dtype="int64")
        self.train_counts = pd.Series(dtype="int64")
        self.target_nulls = 0
        self.id_nulls = 0
        self.sums: list[list[float]] = [[] for _ in features]
        self.present = np.zeros(len(features), dtype=np.int64)

    def add(self, batch: pd.DataFrame, target: str, id_column: str | None) -> None:
        self.target_nulls += int(batch[target].isna().sum())
        if id_column is not None:
            self.id_nulls += int(batch[id_column].isna().sum())
        self.counts = self.counts.add(batch[target].value_counts(), fill_value=0).astype("int64")

    def add_train(self, x: pd.DataFrame, y: pd.Series) -> None:
        self.train_counts = self.train_counts.add(y.value_counts(), fill_value=0).astype("int64")
        values = x.to_numpy(dtype="float64")
        present = ~np.isnan(values)
        self.present += present.sum(axis=0)
        for column, sums in enumerate(self.sums):
            sums.append(math.fsum(values[present[:, column], column]))


def check_columns(dtypes: dict[str, str], target: str, id_column: str | None) -> list[str]:
    if target not in dtypes:
        raise DataError(f"target column {target!r}: missing")
    if id_column is not None and (id_column not in dtypes or id_column == target):
        raise DataError(f"id column {id_column!r}: not a column of the data besides the target")
    features = [c for c in dtypes if c not in (target, id_column)]
    non_numeric = [c for c in features if not pd.api.types.is_numeric_dtype(dtypes[c])]
    if non_numeric:
        raise DataError(f"columns {non_numeric}: not numeric, rule requires numeric features")
    return features


def split_dataset(
    directory: Path,
    output: Path,
    *,
    test_size: float,
    val_size: float,
    seed: int,
    id_column: str | None = None,
) -> dict[str, Any]:
    """Write ``train/val/test.parquet`` of the dataset directory ``directory`` into ``output``
    (an empty directory) and return the feature description (see the module docstring)."""
    check_sizes(test_size, val_size)
    info, batches = iter_dataset(directory)
    target = info.target
    features = check_columns(info.columns, target, id_column)
    totals = _Totals(features)
    raw = {name: SplitWriter(output / f".{name}.raw.parquet") for name in SPLITS}
    for batch in batches:
        totals.add(batch, target, id_column)
        if totals.id_nulls or totals.target_nulls:
            continue  # reported below, with the full counts
        assigned = splits_of(batch, target, id_column, test_size, val_size)
        x = batch[features].astype("float64")
        for name in SPLITS:
            chosen = assigned == name
            part = x[chosen].assign(**{LABEL: batch[target][chosen]})
            raw[name].write(part)
            if name == "train":
                totals.add_train(x[chosen], batch[target][chosen])
    empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in features}).assign(
        **{LABEL: pd.Series(dtype=info.columns[target])}
    )
    for writer in raw.values():
        writer.close(empty)
    if totals.id_nulls:
        raise DataError(f"id column {id_column!r}: {totals.id_nulls} nulls")
    if totals.target_nulls:
        raise DataError(f"target column {target!r}: {totals.target_nulls} nulls")
    classes = sorted(totals.counts.index.tolist())
    if (totals.counts < 3).any():
        rare = sorted(str(c) for c in totals.counts[totals.counts < 3].index)
        raise DataError(f"target column {target!r}: classes {rare} have fewer than 3 rows")
    missing = [str(c) for c in classes if c not in totals.train_counts.index]
    if missing:
        raise DataError(f"target column {target!r}: classes {missing} have no training rows")
    index = {value: position for position, value in enumerate(classes)}
    means = pd.Series(
        [
            math.fsum(s) / n if n else math.nan
            for s, n in zip(totals.sums, totals.present, strict=True)
        ],
        index=features,
        dtype="float64",
    )
    squares: list[list[float]] = [[] for _ in features]
    test_hash = ContentHasher([*((c, "float64") for c in features), (LABEL, "int64")])
    sizes: dict[str, int] = {}
    for name in SPLITS:
        final = SplitWriter(output / f"{name}.parquet")
        for part in iter_parquet([raw[name].path]):
            table = part[features].fillna(means).assign(**{LABEL: part[LABEL].map(index)})
            table = table.astype({LABEL: "int64"})
            final.write(table)
            if name == "train":
                deviations = (table[features].to_numpy() - means.to_numpy()) ** 2
                for column, sums in enumerate(squares):
                    sums.append(math.fsum(deviations[:, column]))
            if name == "test":
                test_hash.update(table)
        final.close(empty.astype({LABEL: "int64"}))
        raw[name].path.unlink()
        sizes[name] = final.rows
    train_rows = sizes["train"]
    return describe_split(
        features=features,
        dtypes={name: info.columns[name] for name in features},
        target=target,
        classes=classes,
        mean=[float(v) for v in means],
        variance=[math.fsum(s) / train_rows for s in squares],
        splits=sizes,
        seed=seed,
        id_column=id_column,
        test_size=test_size,
        val_size=val_size,
        test_hash=f"sha256:{test_hash.hexdigest()}",
    )
