import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlp_common.dataset import write_dataset
from mlp_common.files import read_json
from mlp_common.metrics import parse_katib_lines
from mlp_ingest.core import load_sklearn
from mlp_preprocess.cli import main as preprocess
from mlp_train.cli import main

ROOT = Path(__file__).resolve().parents[3]
FAST = ["--epochs", "12", "--patience", "4"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_dataset(root / "ds", load_sklearn("wine")[0], name="wine", target="target", source="t")
    assert preprocess(["--dataset", str(root / "ds"), "--output", str(root / "prep")]) == 0
    return root / "prep"


@pytest.fixture(scope="module")
def trained(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("model") / "model"
    capture = tmp_path_factory.mktemp("stdout") / "stdout"
    import contextlib

    with open(capture, "w") as handle, contextlib.redirect_stdout(handle):
        assert main(["--data", str(data), "--output", str(out), *FAST]) == 0
    return out, capture.read_text()


def test_writes_model_savedmodel_and_metrics(trained: tuple[Path, str]) -> None:
    model_dir, _ = trained
    assert (model_dir / "model.keras").is_file()
    assert (model_dir / "saved_model" / "saved_model.pb").is_file()
    metrics = read_json(model_dir / "metrics.json")
    assert metrics["val_accuracy"] > 0.85
    assert metrics["baseline_val_accuracy"] > 0.85
    assert metrics["examples_per_second"] > 0
    assert len(metrics["curves"]["loss"]) == metrics["epochs_run"] <= 12
    assert metrics["curves"]["loss"][-1] < metrics["curves"]["loss"][0]
    assert read_json(model_dir / "params.json")["epochs"] == 12
    assert read_json(model_dir / "features.json")["classes"] == ["0", "1", "2"]


def test_stdout_is_katib_metrics_only(trained: tuple[Path, str]) -> None:
    model_dir, stdout = trained
    assert stdout.splitlines()[0].startswith("val_accuracy=")
    parsed = parse_katib_lines(stdout)
    assert set(parsed) == {"val_accuracy", "val_loss"}
    metrics = read_json(model_dir / "metrics.json")
    assert parsed["val_accuracy"] == pytest.approx(metrics["val_accuracy"], abs=1e-6)
    assert len(stdout.splitlines()) == 2


def test_same_seed_same_model(data: Path, trained: tuple[Path, str], tmp_path: Path) -> None:
    import keras

    assert main(["--data", str(data), "--output", str(tmp_path / "again"), *FAST]) == 0
    first = keras.saving.load_model(trained[0] / "model.keras").get_weights()
    second = keras.saving.load_model(tmp_path / "again" / "model.keras").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_two_processes_same_data_params_and_seed_give_identical_metrics(
    data: Path, tmp_path: Path
) -> None:
    """Reproducible across processes (fresh interpreters, fresh TensorFlow state): the metrics and
    the weights are identical; only wall-clock figures may differ."""
    import keras

    outputs = [tmp_path / "one", tmp_path / "two"]
    for out in outputs:
        subprocess.run(
            [sys.executable, "-m", "mlp_train", "--data", str(data), "--output", str(out), *FAST],
            check=True,
            capture_output=True,
        )
    timing = {"train_seconds", "examples_per_second"}
    first, second = (
        {k: v for k, v in read_json(out / "metrics.json").items() if k not in timing}
        for out in outputs
    )
    assert first == second and first["curves"]["val_loss"]
    weights = [keras.saving.load_model(out / "model.keras").get_weights() for out in outputs]
    assert all(np.array_equal(a, b) for a, b in zip(*weights, strict=True))
    assert read_json(outputs[0] / "provenance.json")["trained_at"].endswith("Z")
    assert (outputs[0] / "baseline.joblib").is_file()


def test_config_file_and_overrides(data: Path, tmp_path: Path) -> None:
    config = tmp_path / "hp.yaml"
    config.write_text(yaml.safe_dump({"learning_rate": 0.02, "hidden_units": 8, "epochs": 2}))
    argv = ["--data", str(data), "--output", str(tmp_path / "m"), "--config", str(config)]
    assert main([*argv, "--hidden-units=4"]) == 0
    params = read_json(tmp_path / "m" / "params.json")
    assert (params["learning_rate"], params["hidden_units"], params["epochs"]) == (0.02, 4, 2)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--learning-rate", "0"], "--learning-rate 0.0: must be in (0, 1)"),
        (["--dropout", "1.5", "--epochs", "0"], "--dropout 1.5: must be in [0, 1); --epochs 0"),
    ],
)
def test_bad_hyperparameters(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["--data", str(data), "--output", str(tmp_path / "m"), *argv]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
