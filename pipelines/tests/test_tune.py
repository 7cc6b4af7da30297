import sys
from pathlib import Path

import pytest
from mlp_common.files import read_json
from mlp_pipeline.tune import main, trial_command
from mlp_train.search_space import SEARCH_SPACE


def test_trial_command_is_katib_style(tmp_path: Path) -> None:
    point = {"learning-rate": "0.01", "hidden-units": "8", "dropout": "0.1", "batch-size": "16"}
    command = trial_command(tmp_path / "d", tmp_path / "o", point, epochs=3, seed=1)
    assert command[:3] == [sys.executable, "-m", "mlp_train"]
    assert "--learning-rate=0.01" in command and "--batch-size=16" in command
    assert command[-2:] == ["--epochs=3", "--seed=1"]


def test_local_search_reports_the_best_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--workdir", str(tmp_path), "--trials", "2", "--epochs", "1", "--seed", "3"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    report = read_json(tmp_path / "tune.json")
    scores = [t["metrics"]["val_accuracy"] for t in report["trials"]]
    best = report["best"]
    assert best["metrics"]["val_accuracy"] == max(scores)
    assert set(best["parameters"]) == {p.name for p in SEARCH_SPACE}
    assert out.startswith(f"best trial {best['trial']}: val_accuracy=")
    assert (tmp_path / f"trial-{best['trial']}" / "model.keras").is_file()


def test_failing_trials_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--data", str(tmp_path / "nothing"), "--workdir", str(tmp_path), "--trials", "1"]
    assert main(argv) == 1
    assert "tune: all 1 trials failed; last error: train: " in capsys.readouterr().err
