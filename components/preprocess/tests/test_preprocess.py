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


def test_stratified_split_and_feature_description(tmp_path: Path, dataset: Path) -> None:
    assert main(["--dataset", str(dataset), "--output", str(tmp_path / "out")]) == 0
    features = read_json(tmp_path / "out" / "features.json")
    assert features["splits"] == {"train": 106, "val": 36, "test": 36}
    assert features["classes"] == ["0", "1", "2"] and len(features["features"]) == 13
    train = pd.read_parquet(tmp_path / "out" / "train.parquet")
    assert list(train.columns) == [*features["features"], "label"]
    assert features["mean"][0] == pytest.approx(train[features["features"][0]].mean())
    shares = train["label"].value_counts(normalize=True).sort_index()
    overall = load_sklearn("wine")[0]["target"].value_counts(normalize=True).sort_index()
    assert (shares - overall).abs().max() < 0.02  # stratified


def test_same_seed_same_split_other_seed_other_split(tmp_path: Path, dataset: Path) -> None:
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        assert (
            main(["--dataset", str(dataset), "--output", str(tmp_path / name), "--seed", seed]) == 0
        )
    test = {n: pd.read_parquet(tmp_path / n / "test.parquet") for n in "abc"}
    pd.testing.assert_frame_equal(test["a"], test["b"])
    assert not test["a"].equals(test["c"])


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
        assert read_json(local / "features.json")["splits"]["test"] == 36
        assert pd.read_parquet(local / "train.parquet").shape == (106, 14)
