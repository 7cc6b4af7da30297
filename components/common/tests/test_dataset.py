import hashlib
from pathlib import Path

import fsspec
import pandas as pd
import pytest
from mlp_common.dataset import (
    content_hash,
    materialize_snapshot,
    read_dataset,
    read_table,
    storage_options,
    verify_snapshot,
    write_dataset,
    write_snapshot,
)
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


def test_dataset_json_depends_only_on_the_content(tmp_path: Path) -> None:
    write_dataset(tmp_path / "a", frame(), name="toy", target="y", source="one")
    write_dataset(tmp_path / "b", frame(), name="toy", target="y", source="two")
    assert (tmp_path / "a" / "dataset.json").read_bytes() == (
        tmp_path / "b" / "dataset.json"
    ).read_bytes()
    assert (tmp_path / "a" / "part-00000.parquet").read_bytes() == (
        tmp_path / "b" / "part-00000.parquet"
    ).read_bytes()


@pytest.mark.parametrize("store", ["filesystem", "s3"])
def test_snapshot_is_content_addressed_immutable_and_reads_back_byte_for_byte(
    tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    root = str(tmp_path / "datasets") if store == "filesystem" else "s3://data/datasets"
    if store == "s3":
        request.getfixturevalue("s3")
    info = write_snapshot(root, frame(), name="toy", target="y")
    digest = info.content_hash.split(":", 1)[1]
    assert info.uri == f"{root}/toy/{digest}/"
    again = write_snapshot(root, frame().copy(), name="toy", target="y")
    assert again == info  # same content: same URI, nothing rewritten
    assert verify_snapshot(info.uri) == info
    # the exact bytes: reading the URI gives back the part whose sha256 is recorded
    fs, path = fsspec.core.url_to_fs(info.uri, **(storage_options(info.uri) or {}))
    data = fs.cat_file(f"{path.rstrip('/')}/part-00000.parquet")
    assert f"sha256:{hashlib.sha256(data).hexdigest()}" == info.files["part-00000.parquet"]
    assert materialize_snapshot(info.uri, tmp_path / "copy") == info
    assert (tmp_path / "copy" / "part-00000.parquet").read_bytes() == data
    pd.testing.assert_frame_equal(read_dataset(tmp_path / "copy")[0], frame())
    changed = frame()
    changed.loc[0, "x"] = 9.0
    other = write_snapshot(root, changed, name="toy", target="y")
    assert other.uri != info.uri and other.content_hash != info.content_hash
    with pytest.raises(StepError, match="refusing to reuse it for target 'x'"):
        write_snapshot(root, frame(), name="toy", target="x")


def test_a_tampered_snapshot_fails_verification(tmp_path: Path) -> None:
    info = write_snapshot(str(tmp_path), frame(), name="toy", target="y")
    assert info.uri is not None
    changed = frame()
    changed.loc[1, "x"] = 0.0
    changed.to_parquet(Path(info.uri) / "part-00000.parquet", index=False)
    with pytest.raises(DataError, match=r"part-00000.parquet: sha256 sha256:\w+, recorded"):
        verify_snapshot(info.uri)


def test_content_hash_does_not_depend_on_row_order() -> None:
    from mlp_common.dataset import content_hash

    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "target": [0, 1, 0]})
    shuffled = frame.iloc[[2, 0, 1]].reset_index(drop=True)
    assert content_hash(shuffled) == content_hash(frame)
    changed = frame.assign(a=[1.0, 2.0, 3.5])
    assert content_hash(changed) != content_hash(frame)
    assert content_hash(frame.astype({"a": "float32"})) != content_hash(frame)  # dtypes count
