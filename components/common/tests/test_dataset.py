from pathlib import Path

import pandas as pd
import pytest
from mlp_common.dataset import content_hash, read_dataset, read_table, write_dataset
from mlp_common.step import DataError, StepError


def frame() -> pd.DataFrame:
    return pd.DataFrame({"x": [1.5, 2.25, 3.0], "y": [0, 1, 0]})


def test_hash_is_stable_and_content_sensitive() -> None:
    assert content_hash(frame()) == content_hash(frame().copy())
    changed = frame()
    changed.loc[0, "x"] = 1.5000001
    assert content_hash(changed) != content_hash(frame())
    assert content_hash(frame().astype({"y": "float64"})) != content_hash(frame())


def test_write_and_read_dataset(tmp_path: Path) -> None:
    info = write_dataset(tmp_path / "ds", frame(), name="toy", target="y", source="test")
    loaded, again = read_dataset(tmp_path / "ds")
    pd.testing.assert_frame_equal(loaded, frame())
    assert again == info
    assert info.version == info.content_hash.split(":")[1][:12]
    assert info.rows == 3 and info.columns == {"x": "float64", "y": "int64"}


def test_missing_target_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="target column 'label'"):
        write_dataset(tmp_path / "ds", frame(), name="toy", target="label", source="test")
    assert not (tmp_path / "ds").exists()
    assert list(tmp_path.iterdir()) == []


def test_read_table_formats_and_errors(tmp_path: Path) -> None:
    frame().to_csv(tmp_path / "t.csv", index=False)
    frame().to_parquet(tmp_path / "t.parquet", index=False)
    pd.testing.assert_frame_equal(read_table(str(tmp_path / "t.csv")), frame())
    pd.testing.assert_frame_equal(read_table(str(tmp_path / "t.parquet")), frame())
    with pytest.raises(StepError, match="cannot tell the format"):
        read_table(str(tmp_path / "t.txt"))
    with pytest.raises(StepError, match="no such file"):
        read_table(str(tmp_path / "missing.csv"))


def test_read_table_from_s3(s3: str) -> None:
    frame().to_csv(
        "s3://data/t.csv", index=False, storage_options={"client_kwargs": {"endpoint_url": s3}}
    )
    pd.testing.assert_frame_equal(read_table("s3://data/t.csv"), frame())
