"""Training input read from the preprocessed Parquet files through tf.data, never whole in memory.

A split file (``train.parquet``, ...) is a sequence of row groups (preprocess writes one per
batch); a row group is the unit of reading and of sharding, a *file shard*. The pipeline::

    shard indices -> (shuffle shards, seeded) -> [shard for this worker]
      -> interleave(read one row group, cycle 4 (1 unshuffled), deterministic) -> rows
      -> shuffle(bounded buffer, seeded) -> batch -> prefetch

holds at most ``cycle`` row groups, the shuffle buffer (:data:`SHUFFLE_ROWS` rows) and the
prefetched batches, whatever the size of the split. With the same files and seed it yields the
same batches in the same order, so training stays deterministic. Distributed workers each take
every ``workers``-th file shard; a split with fewer shards than workers is sharded by row instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from mlp_common.step import StepError
from mlp_common.tables import iter_parquet

LABEL = "label"
SHUFFLE_ROWS = 16_384
"""Rows in the shuffle buffer (about 4 MB of float32 features for 64 columns)."""
CYCLE = 4
"""Row groups read concurrently by the interleave."""


@dataclass(frozen=True)
class SplitFiles:
    """One split of a preprocess output: its file, feature order, rows and row groups."""

    path: Path
    features: tuple[str, ...]
    rows: int
    shards: int

    @classmethod
    def open(cls, data_dir: Path, name: str, features: list[str]) -> SplitFiles:
        path = data_dir / f"{name}.parquet"
        if not path.is_file():
            raise StepError(f"{data_dir}: no {name}.parquet; not a preprocess output directory")
        metadata = pq.read_metadata(path)
        missing = [c for c in [*features, LABEL] if c not in metadata.schema.names]
        if missing:
            raise StepError(f"{path}: missing columns {missing}")
        return cls(path, tuple(features), metadata.num_rows, metadata.num_row_groups)

    def read_shard(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Features (float32) and labels (int64) of row group ``index``."""
        table = pq.ParquetFile(self.path).read_row_group(int(index), [*self.features, LABEL])
        frame = table.to_pandas()
        return frame[list(self.features)].to_numpy("float32"), frame[LABEL].to_numpy("int64")

    def batches(self, rows: int = 8192) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The split in order, as (features, labels) of at most ``rows`` rows (for scoring)."""
        for frame in iter_parquet([self.path], [*self.features, LABEL], rows):
            yield frame[list(self.features)].to_numpy("float32"), frame[LABEL].to_numpy("int64")

    def sample(self, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """Every ``k``-th row, ``k`` the smallest step that keeps at most ``limit`` rows: all
        rows of a small split, a deterministic, evenly spread sample of a large one. The sample
        is filled in place batch by batch: memory is the sample plus one batch."""
        step = max(1, -(-self.rows // limit))
        kept = -(-self.rows // step)
        xs = np.empty((kept, len(self.features)), "float32")
        ys = np.empty(kept, "int64")
        filled = seen = 0
        for x, y in self.batches():
            first = -seen % step  # the batch's first row whose index is a multiple of step
            count = len(y[first::step])
            xs[filled : filled + count] = x[first::step]
            ys[filled : filled + count] = y[first::step]
            filled, seen = filled + count, seen + len(y)
        return xs[:filled], ys[:filled]


def parquet_dataset(
    split: SplitFiles,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    workers: int = 1,
    worker: int = 0,
    repeat: bool = False,
    drop_remainder: bool = False,
) -> Any:
    """The tf.data pipeline of ``split`` (see the module docstring)."""
    import tensorflow as tf

    n_features = len(split.features)
    signature = (
        tf.TensorSpec(shape=(None, n_features), dtype=tf.float32),
        tf.TensorSpec(shape=(None,), dtype=tf.int64),
    )

    shards = tf.data.Dataset.range(split.shards)
    if shuffle:
        shards = shards.shuffle(split.shards, seed=seed, reshuffle_each_iteration=True)
    by_file = workers > 1 and split.shards >= workers
    if by_file:
        shards = shards.shard(workers, worker)
    data = shards.interleave(
        lambda index: tf.data.Dataset.from_generator(
            lambda i: iter([split.read_shard(int(i))]), output_signature=signature, args=(index,)
        ).unbatch(),
        cycle_length=CYCLE if shuffle else 1,  # unshuffled: the file's order
        block_length=1,
        num_parallel_calls=1,
        deterministic=True,
    )
    if workers > 1 and not by_file:
        data = data.shard(workers, worker)
    if shuffle:
        data = data.shuffle(SHUFFLE_ROWS, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        data = data.repeat()
    data = data.batch(batch_size, drop_remainder=drop_remainder)
    if not repeat and workers == 1:  # Keras needs the epoch length (generators hide it)
        batches = split.rows // batch_size if drop_remainder else -(-split.rows // batch_size)
        data = data.apply(tf.data.experimental.assert_cardinality(batches))
    return data.prefetch(tf.data.AUTOTUNE)
