import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from mlp_common.dataset import read_dataset, verify_snapshot
from mlp_ingest.cli import main
from mlp_ingest.core import load_sklearn

WINE_HASH = "sha256:c087f25b3d81dc82dd5708a209526836483a03bf8a43834f5ff38b75f96e0788"


def test_default_is_the_bundled_digits_dataset(tmp_path: Path) -> None:
    assert main(["--output", str(tmp_path / "ds")]) == 0
    frame, info = read_dataset(tmp_path / "ds")
    assert (info.name, info.rows, info.target) == ("digits", 1797, "target")
    assert frame.shape == (1797, 65) and "pixel_7_7" in frame.columns


def test_wine_keeps_its_hash(tmp_path: Path) -> None:
    assert main(["--source", "sklearn:wine", "--output", str(tmp_path / "ds")]) == 0
    frame, info = read_dataset(tmp_path / "ds")
    assert (info.name, info.rows, info.content_hash) == ("wine", 178, WINE_HASH)
    assert "od280_od315_of_diluted_wines" in frame.columns


def test_snapshot_uri_depends_only_on_the_content(tmp_path: Path) -> None:
    """Two ingests of the same data (from different sources) give the same snapshot URI and
    write nothing new; changed data gives a new URI."""
    frame, _ = load_sklearn("wine")
    frame.to_csv(tmp_path / "wine.csv", index=False)
    root = str(tmp_path / "datasets")
    argv = ["--name", "wine", "--snapshot-root", root]
    assert main(["--source", "sklearn:wine", *argv, "--uri-file", str(tmp_path / "u1")]) == 0
    uri = (tmp_path / "u1").read_text()
    assert uri == f"{root}/wine/{WINE_HASH.split(':')[1]}/"
    stat = (Path(uri) / "part-00000.parquet").stat()
    csv = ["--source", str(tmp_path / "wine.csv"), "--target", "target"]
    assert main([*csv, *argv, "--uri-file", str(tmp_path / "u2")]) == 0
    assert (tmp_path / "u2").read_text() == uri
    assert (
        Path(uri) / "part-00000.parquet"
    ).stat().st_mtime_ns == stat.st_mtime_ns  # not rewritten
    assert verify_snapshot(uri).content_hash == WINE_HASH
    frame.loc[0, "alcohol"] = 14.0
    frame.to_csv(tmp_path / "changed.csv", index=False)
    changed = ["--source", str(tmp_path / "changed.csv"), "--target", "target"]
    assert main([*changed, *argv, "--uri-file", str(tmp_path / "u3")]) == 0
    assert (tmp_path / "u3").read_text() != uri
    assert sorted(p.name for p in (tmp_path / "datasets" / "wine").iterdir()) == sorted(
        [Path(uri).name, Path((tmp_path / "u3").read_text()).name]
    )


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_files_give_the_same_hash_as_the_bundled_data(tmp_path: Path, suffix: str) -> None:
    frame, _ = load_sklearn("wine")
    path = tmp_path / f"wine.{suffix}"
    frame.to_csv(path, index=False) if suffix == "csv" else frame.to_parquet(path, index=False)
    assert (
        main(["--source", str(path), "--target", "target", "--output", str(tmp_path / "ds")]) == 0
    )
    assert read_dataset(tmp_path / "ds")[1].content_hash == WINE_HASH


def test_sql_query_through_sqlalchemy(tmp_path: Path) -> None:
    frame, _ = load_sklearn("wine")
    database = tmp_path / "wine.db"
    with sqlite3.connect(database) as connection:
        frame.to_sql("wine", connection, index=False)
    argv = ["--source", f"sqlite:///{database}", "--query", "SELECT * FROM wine WHERE target < 2"]
    assert main([*argv, "--target", "target", "--output", str(tmp_path / "ds")]) == 0
    loaded, info = read_dataset(tmp_path / "ds")
    assert info.rows == int((frame["target"] < 2).sum())
    assert sorted(loaded["target"].unique()) == [0, 1]


def test_s3_source(tmp_path: Path, s3: str) -> None:
    frame, _ = load_sklearn("wine")
    frame.to_csv(
        "s3://data/wine.csv", index=False, storage_options={"client_kwargs": {"endpoint_url": s3}}
    )
    argv = ["--source", "s3://data/wine.csv", "--target", "target"]
    assert main([*argv, "--output", str(tmp_path / "ds")]) == 0
    assert read_dataset(tmp_path / "ds")[1].content_hash == WINE_HASH


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--source", "sklearn:mnist"], "unknown bundled dataset"),
        (["--source", "sqlite:///x.db"], "a SQL source needs --query"),
        (["--source", "{tmp}/missing.csv", "--target", "y"], "missing.csv: no such file"),
        (["--source", "{tmp}/data.txt", "--target", "y"], "cannot tell the format"),
        (["--source", "{tmp}/data.csv"], "name the label column with --target"),
        (["--source", "{tmp}/data.csv", "--target", "nope"], "target column 'nope' not in"),
        (["--source", "sqlite:///{tmp}/none.db", "--query", "SELECT 1"], "no such SQLite file"),
        (["--source", "sqlite:///{tmp}/t.db", "--query", "SELECT * FROM nope"], "no such table"),
    ],
)
def test_bad_sources_fail_clearly_without_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    pd.DataFrame({"x": [1.0], "y": [0]}).to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "data.txt").write_text("x\n")
    sqlite3.connect(tmp_path / "t.db").close()
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    assert main([*argv, "--output", str(tmp_path / "ds")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ingest: ") and message in err
    assert not (tmp_path / "ds").exists()


def test_sql_is_streamed_in_chunks_and_equals_the_whole_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server-side cursor read in chunks gives the table pandas reads whole: an integer column
    that meets a NULL only in a later chunk is widened to float64 as pandas would."""
    import mlp_ingest.core as core
    from mlp_common.dataset import content_hash

    frame, _ = load_sklearn("wine")
    frame["batch_no"] = range(len(frame))
    with sqlite3.connect(tmp_path / "w.db") as connection:
        frame.to_sql("wine", connection, index=False)
        connection.execute("UPDATE wine SET batch_no = NULL WHERE batch_no = 170")
    url, query = f"sqlite:///{tmp_path / 'w.db'}", "SELECT * FROM wine"
    with sqlite3.connect(tmp_path / "w.db") as connection:
        whole = pd.read_sql_query(query, connection)
    assert str(whole["batch_no"].dtype) == "float64"
    monkeypatch.setattr(core, "SQL_CHUNK_ROWS", 50)
    assert len(list(core.sql_batches(url, query)({"batch_no": "float64"}))) == 4
    argv = ["--source", url, "--query", query, "--target", "target", "--name", "wine"]
    assert main([*argv, "--output", str(tmp_path / "ds")]) == 0
    loaded, info = read_dataset(tmp_path / "ds")
    pd.testing.assert_frame_equal(loaded, whole)
    assert info.content_hash == content_hash(whole)
