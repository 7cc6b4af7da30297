import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from mlp_common.dataset import read_dataset
from mlp_ingest.cli import main
from mlp_ingest.core import load_sklearn

WINE_HASH = "sha256:72f5a92457a6dd45e992771fb46e2f601424d2764213544e85a6059964d46495"


def test_default_is_the_bundled_wine_dataset(tmp_path: Path) -> None:
    assert main(["--output", str(tmp_path / "ds"), "--name", "wine"]) == 0
    frame, info = read_dataset(tmp_path / "ds")
    assert (info.rows, info.target, info.source) == (178, "target", "sklearn:wine")
    assert info.content_hash == WINE_HASH
    assert "od280_od315_of_diluted_wines" in frame.columns


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
