"""The step's two-pass streaming split equals the in-memory definition (core.split)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlp_common import tables
from mlp_common.dataset import write_dataset
from mlp_ingest.core import load_sklearn
from mlp_preprocess.core import split
from mlp_preprocess.streaming import split_dataset


def _same(tmp_path: Path, frame: pd.DataFrame, id_column: str | None = None) -> None:
    write_dataset(tmp_path / "ds", frame, name="d", target="target")
    (tmp_path / "out").mkdir()
    described = split_dataset(
        tmp_path / "ds",
        tmp_path / "out",
        test_size=0.2,
        val_size=0.2,
        seed=42,
        id_column=id_column,
    )
    expected_tables, expected = split(
        frame, "target", test_size=0.2, val_size=0.2, seed=42, id_column=id_column
    )
    for name, table in expected_tables.items():
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out" / f"{name}.parquet"), table)
    for key in ("mean", "variance"):
        assert described.pop(key) == pytest.approx(expected.pop(key), rel=1e-12)
    assert described == expected  # splits, classes, dtypes, test_hash, rule
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "test.parquet",
        "train.parquet",
        "val.parquet",
    ]


def test_default_data_splits_identically_in_small_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tables.iter_parquet, "__defaults__", (None, 100))  # 18 batches
    _same(tmp_path, load_sklearn("digits")[0])


def test_nulls_are_filled_with_training_means_and_ids_key_rows(tmp_path: Path) -> None:
    frame = load_sklearn("wine")[0]
    frame.loc[frame.index % 11 == 0, "alcohol"] = np.nan
    frame.insert(0, "patient", [f"p{i:04d}" for i in range(len(frame))])
    _same(tmp_path, frame, id_column="patient")


def test_row_key_texts_equal_python_formatting() -> None:
    from mlp_preprocess.core import float_texts

    rng = np.random.default_rng(0)
    values = np.concatenate(
        [
            rng.integers(-20, 20, 1000).astype("float64"),
            rng.normal(size=1000) * 1e5,
            [0.0, -0.0, np.nan, np.inf, -np.inf, 1e17, 1e16, -1e16 - 2, 2.0**53 + 2, 5e-324],
        ]
    )
    texts = float_texts(values.reshape(-1, 2)).ravel().tolist()
    assert texts == [format(v, ".17g") for v in values]


def test_spark_puts_the_same_rows_in_the_same_splits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PySpark job (local[*], a real JVM) and the streaming path: the same rows in each split
    (order aside), the same classes, sizes and test hash, means and variances to rounding. The
    JVM is the pinned one (mlp_preprocess.java): a JAVA_HOME of the machine is not used."""
    from mlp_preprocess.spark import split_on_spark

    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java-here"))

    frame = load_sklearn("wine")[0]
    frame.loc[frame.index % 11 == 0, "alcohol"] = np.nan
    write_dataset(tmp_path / "ds", frame, name="d", target="target")
    described = {}
    for engine, run in (("local", split_dataset), ("spark", split_on_spark)):
        (tmp_path / engine).mkdir()
        described[engine] = run(
            tmp_path / "ds", tmp_path / engine, test_size=0.2, val_size=0.2, seed=42
        )
    for name in ("train", "val", "test"):
        local, spark = (
            pd.read_parquet(tmp_path / e / f"{name}.parquet").sort_values(["alcohol", "proline"])
            for e in ("local", "spark")
        )
        pd.testing.assert_frame_equal(
            local.reset_index(drop=True),
            spark.reset_index(drop=True),
            check_exact=False,
            rtol=1e-12,
        )
    for key in ("mean", "variance"):
        assert described["spark"].pop(key) == pytest.approx(described["local"].pop(key), rel=1e-9)
    assert described["spark"] == described["local"]
    assert sorted(p.name for p in (tmp_path / "spark").iterdir()) == [
        "test.parquet",
        "train.parquet",
        "val.parquet",
    ]
