"""Streaming ingest, snapshot and statistics: equal to the in-memory path, in bounded batches."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlp_common import tables
from mlp_common.content import content_hash_of, frame_dtypes
from mlp_common.dataset import (
    content_hash,
    iter_dataset,
    read_dataset,
    read_table,
    table_batches,
    verify_snapshot,
    write_dataset,
    write_snapshot,
)
from mlp_common.statistics import (
    DISTINCT_LIMIT,
    QUANTILES,
    StatisticsAccumulator,
    feature_statistics,
    quantiles_of_counts,
)
from sklearn.datasets import load_digits, load_wine


def digits() -> pd.DataFrame:
    return load_digits(as_frame=True).frame


def test_hash_ignores_row_order_batching_and_partitioning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = digits()
    whole = content_hash(frame)
    shuffled = frame.sample(frac=1.0, random_state=3)
    batches = [shuffled.iloc[i : i + 100] for i in range(0, len(frame), 100)]
    assert content_hash_of(batches, frame_dtypes(frame)) == whole
    monkeypatch.setattr(tables, "ROW_GROUP_ROWS", 64)
    monkeypatch.setattr(tables, "PART_ROWS", 256)
    info = write_snapshot(str(tmp_path), lambda _: batches, name="digits", target="target")
    assert info.content_hash == whole
    assert sorted(info.files) == [f"part-{i:05d}.parquet" for i in range(8)]  # 1,797 / 256
    assert verify_snapshot(str(info.uri)) == info
    again, parts = iter_dataset(str(info.uri))
    assert max(len(part) for part in parts) <= tables.BATCH_ROWS
    pd.testing.assert_frame_equal(read_dataset(str(info.uri))[0], shuffled.reset_index(drop=True))
    # one changed value, one duplicated row, one changed dtype: another hash
    changed = frame.copy()
    changed.loc[5, "pixel_0_3"] += 1
    assert content_hash(changed) != whole
    assert content_hash(pd.concat([frame, frame.iloc[:1]])) != whole
    assert content_hash(frame.astype({"target": "float64"})) != whole


def test_single_part_default_bytes_do_not_depend_on_batching(tmp_path: Path) -> None:
    frame = digits()
    one = write_dataset(tmp_path / "one", frame, name="digits", target="target")
    many = write_dataset(
        tmp_path / "many",
        lambda _: [frame.iloc[i : i + 7] for i in range(0, len(frame), 7)],
        name="digits",
        target="target",
    )
    assert one == many
    assert (tmp_path / "one" / "part-00000.parquet").read_bytes() == (
        tmp_path / "many" / "part-00000.parquet"
    ).read_bytes()


def test_csv_read_in_batches_equals_pandas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Types are fixed by the first batch; a later batch that needs a wider type (a null or a
    fraction in an int column, text in a number column) re-reads with the column widened, so the
    result equals pandas.read_csv of the whole file."""
    rows = 5000
    frame = pd.DataFrame(
        {
            "a": np.arange(rows),
            "b": np.arange(rows) % 7,
            "c": np.arange(rows) * 0.5,
            "d": [str(i) for i in range(rows)],
            "target": np.arange(rows) % 3,
        }
    )
    text = frame.to_csv(index=False).splitlines()
    text[4000] = "1.5,,x,text,1"  # float in a, null in b, text in c
    (tmp_path / "t.csv").write_text("\n".join(text) + "\n")
    monkeypatch.setattr(tables, "CSV_BLOCK_BYTES", 4096)
    expected = pd.read_csv(tmp_path / "t.csv")
    widened = {"a": "float64", "b": "float64", "c": "object", "d": "object"}
    with pytest.raises(tables.Promote):
        list(table_batches(str(tmp_path / "t.csv"))({}))
    assert len(list(table_batches(str(tmp_path / "t.csv"))(widened))) > 5  # in batches
    pd.testing.assert_frame_equal(read_table(str(tmp_path / "t.csv")), expected)
    info = write_dataset(
        tmp_path / "ds", table_batches(str(tmp_path / "t.csv")), name="t", target="target"
    )
    assert info.content_hash == content_hash(expected)
    assert info.columns == {str(c): str(t) for c, t in expected.dtypes.items()}


def test_quantiles_from_counts_equal_numpy() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        size = int(rng.integers(1, 300))
        values = rng.integers(0, int(rng.integers(1, 30)), size) * rng.choice([1.0, 0.37, 1e-3])
        distinct, counts = np.unique(values, return_counts=True)
        assert np.array_equal(
            quantiles_of_counts(distinct, counts, QUANTILES), np.quantile(values, QUANTILES)
        )


@pytest.mark.parametrize("loader", [load_digits, load_wine])
def test_streaming_statistics_equal_the_in_memory_ones(loader) -> None:  # type: ignore[no-untyped-def]
    frame = loader(as_frame=True).frame
    whole = feature_statistics(frame)
    accumulator = StatisticsAccumulator(dict(frame.dtypes))
    reversed_rows = frame.iloc[::-1]
    for start in range(0, len(frame), 37):
        accumulator.add(reversed_rows.iloc[start : start + 37])
    assert accumulator.result() == whole
    for name in frame.columns:  # and equal to pandas/numpy on the whole column
        stats, values = whole["columns"][name], frame[name].astype("float64")
        assert stats["mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert stats["std"] == pytest.approx(values.std(ddof=0), rel=1e-12, abs=1e-300)
        assert stats["quantiles"] == [float(q) for q in np.quantile(values, QUANTILES)]
        assert (stats["min"], stats["max"]) == (values.min(), values.max())


def test_high_cardinality_statistics_stay_bounded_and_order_independent() -> None:
    values = np.random.default_rng(1).normal(size=4 * DISTINCT_LIMIT)
    frame = pd.DataFrame({"x": values})
    forward, backward = (
        StatisticsAccumulator({"x": "float64"}),
        StatisticsAccumulator({"x": "float64"}),
    )
    for start in range(0, len(frame), 5000):
        forward.add(frame.iloc[start : start + 5000])
        backward.add(frame.iloc[::-1].iloc[start : start + 5000])
    assert forward.columns["x"].values.size <= DISTINCT_LIMIT
    a, b = forward.result()["columns"]["x"], backward.result()["columns"]["x"]
    assert a["quantiles"] == b["quantiles"] and a["histogram"] == b["histogram"]
    assert a["precision"] < 52
    assert a["quantiles"] == pytest.approx(np.quantile(values, QUANTILES), rel=1e-3, abs=1e-3)
    assert a["mean"] == pytest.approx(values.mean(), abs=1e-12)
