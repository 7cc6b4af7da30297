"""The streaming tf.data input: file shards, a bounded shuffle, determinism, sharding by file."""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from mlp_train.inputs import SplitFiles, parquet_dataset

FEATURES = ["a", "b"]


def split_file(tmp_path: Path, rows: int, group: int) -> SplitFiles:
    frame = pd.DataFrame(
        {"a": np.arange(rows, dtype="float64"), "b": -np.arange(rows, dtype="float64")}
    ).assign(label=np.arange(rows) % 3)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "train.parquet",
                   row_group_size=group)  # fmt: skip
    return SplitFiles.open(tmp_path, "train", FEATURES)


def rows_of(data: object) -> list[int]:
    return [int(v) for x, _ in data for v in x.numpy()[:, 0]]  # type: ignore[attr-defined]


def test_every_row_once_per_epoch_shuffled_the_same_way_for_the_same_seed(tmp_path: Path) -> None:
    split = split_file(tmp_path, 1000, 100)
    assert (split.rows, split.shards) == (1000, 10)
    first = rows_of(parquet_dataset(split, 32, shuffle=True, seed=7))
    assert sorted(first) == list(range(1000)) and first != list(range(1000))
    assert rows_of(parquet_dataset(split, 32, shuffle=True, seed=7)) == first
    assert rows_of(parquet_dataset(split, 32, shuffle=True, seed=8)) != first
    assert rows_of(parquet_dataset(split, 32, shuffle=False, seed=7)) == list(range(1000))


def test_workers_shard_by_file_and_together_see_every_row(tmp_path: Path) -> None:
    split = split_file(tmp_path, 1000, 100)
    seen = [rows_of(parquet_dataset(split, 10, shuffle=False, seed=0, workers=2, worker=w))
            for w in (0, 1)]  # fmt: skip
    groups = [{row // 100 for row in rows} for rows in seen]
    assert not groups[0] & groups[1]  # whole row groups: sharded by file shard
    assert sorted(seen[0] + seen[1]) == list(range(1000))


def test_fewer_shards_than_workers_shard_by_row(tmp_path: Path) -> None:
    split = split_file(tmp_path, 100, 100)
    seen = [rows_of(parquet_dataset(split, 10, shuffle=False, seed=0, workers=2, worker=w))
            for w in (0, 1)]  # fmt: skip
    assert seen[0] == list(range(0, 100, 2)) and seen[1] == list(range(1, 100, 2))


def test_the_baseline_sample_is_every_kth_row_in_memory_of_the_sample_alone(
    tmp_path: Path,
) -> None:
    """`sample` keeps rows 0, k, 2k, ... across batches and fills its result in place: its peak
    is about the sample itself (it used to hold the kept rows twice, listed and concatenated)."""
    import tracemalloc

    split = split_file(tmp_path, 100_000, 7_000)
    x, y = split.sample(30_000)  # k = 4
    assert list(x[:3, 0]) == [0, 4, 8] and len(x) == 25_000
    assert np.array_equal(y, np.arange(0, 100_000, 4) % 3)
    whole_x, whole_y = split.sample(100_000)
    assert np.array_equal(whole_x[:, 0], np.arange(100_000)) and len(whole_y) == 100_000
    tracemalloc.start()
    try:
        x, y = split.sample(100_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    result = x.nbytes + y.nbytes
    assert peak < 1.5 * result, f"peak {peak / result:.2f}x the sample"
