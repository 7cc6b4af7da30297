from pathlib import Path

import pandas as pd
import pytest
from mlp_common.dataset import write_dataset
from mlp_common.files import read_json
from mlp_ingest.core import load_sklearn
from mlp_preprocess.cli import main


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    write_dataset(
        tmp_path / "ds", load_sklearn("wine")[0], name="wine", target="target", source="t"
    )
    return tmp_path / "ds"


def test_split_by_row_hash_and_feature_description(tmp_path: Path, dataset: Path) -> None:
    assert main(["--dataset", str(dataset), "--output", str(tmp_path / "out")]) == 0
    features = read_json(tmp_path / "out" / "features.json")
    splits = features["splits"]
    assert sum(splits.values()) == 178 and 0.1 < splits["test"] / 178 < 0.3
    assert features["classes"] == ["0", "1", "2"] and len(features["features"]) == 13
    assert features["dtypes"]["alcohol"] == "float64"
    assert features["split"]["key"] == "row content (features, target)"
    assert features["test_hash"].startswith("sha256:")
    train = pd.read_parquet(tmp_path / "out" / "train.parquet")
    assert list(train.columns) == [*features["features"], "label"]
    assert features["mean"][0] == pytest.approx(train[features["features"][0]].mean())


def _rows(path: Path) -> set[tuple[float, ...]]:
    return set(map(tuple, pd.read_parquet(path).to_numpy().round(9).tolist()))


def test_growing_data_never_moves_a_training_row_into_test(tmp_path: Path) -> None:
    """Acceptance (issue 21): production trained on the first 1,400 digits; the next snapshot
    has all 1,797 rows, shuffled. Not one row production trained or validated on may be in the
    new test set (the old positional split put most of them there)."""
    frame = load_sklearn("digits")[0]
    old, new = frame.iloc[:1400], frame.sample(frac=1.0, random_state=7)
    for name, table in (("old", old), ("new", new)):
        write_dataset(tmp_path / name, table, name="digits", target="target", source="t")
        assert (
            main(["--dataset", str(tmp_path / name), "--output", str(tmp_path / f"{name}-out")])
            == 0
        )
    seen = _rows(tmp_path / "old-out" / "train.parquet") | _rows(
        tmp_path / "old-out" / "val.parquet"
    )
    new_test = _rows(tmp_path / "new-out" / "test.parquet")
    assert len(new_test) > 300
    assert not seen & new_test
    assert _rows(tmp_path / "old-out" / "test.parquet") <= new_test  # old test rows stay test


def test_an_id_column_keys_the_split_and_is_not_a_feature(tmp_path: Path) -> None:
    frame = load_sklearn("wine")[0]
    frame.insert(0, "patient", [f"p{i:04d}" for i in range(len(frame))])
    changed = frame.copy()
    changed["alcohol"] += 0.5  # every row's content changes, its id does not
    for name, table in (("a", frame), ("b", changed)):
        write_dataset(tmp_path / name, table, name="wine", target="target", source="t")
        argv = ["--dataset", str(tmp_path / name), "--output", str(tmp_path / f"{name}-out")]
        assert main([*argv, "--id-column", "patient"]) == 0
    described = read_json(tmp_path / "a-out" / "features.json")
    assert "patient" not in described["features"]
    assert described["split"]["key"] == "id column 'patient'"
    a, b = (pd.read_parquet(tmp_path / f"{n}-out" / "test.parquet") for n in "ab")
    assert (a["alcohol"] + 0.5).round(9).tolist() == b["alcohol"].round(9).tolist()
    assert (
        main(
            [
                "--dataset",
                str(tmp_path / "a"),
                "--output",
                str(tmp_path / "x"),
                "--id-column",
                "nope",
            ]
        )
        == 1
    )


def test_the_seed_does_not_move_rows(tmp_path: Path, dataset: Path) -> None:
    for name, seed in (("a", "1"), ("b", "2")):
        assert (
            main(["--dataset", str(dataset), "--output", str(tmp_path / name), "--seed", seed]) == 0
        )
    test = {n: pd.read_parquet(tmp_path / n / "test.parquet") for n in "ab"}
    pd.testing.assert_frame_equal(test["a"], test["b"])


def test_bad_sizes_and_inputs(
    tmp_path: Path, dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "out")
    assert (
        main(
            ["--dataset", str(dataset), "--output", out, "--test-size", "0.6", "--val-size", "0.5"]
        )
        == 1
    )
    assert "their sum below 1" in capsys.readouterr().err
    assert main(["--dataset", str(tmp_path), "--output", out]) == 1
    assert "not a dataset directory" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_output_to_object_store_feeds_train_data_uri(
    tmp_path: Path, dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlp_common.storage import localize_directory
    from mlp_common.testing import s3_server

    monkeypatch.setenv("MLP_CACHE_DIR", str(tmp_path / "cache"))
    with s3_server("mlp-artifacts"):
        uri = "s3://mlp-artifacts/preprocessed/wine"
        assert main(["--dataset", str(dataset), "--output", uri]) == 0
        local = localize_directory(uri)
        splits = read_json(local / "features.json")["splits"]
        assert pd.read_parquet(local / "train.parquet").shape == (splits["train"], 14)
