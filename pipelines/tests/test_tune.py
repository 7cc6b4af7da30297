"""`make tune` (mlp-tune): the search space, objective and trial command come from the spec's
Experiment component, and learning rates are sampled log-uniformly. The run against a registry
the real pipeline filled is in test_local_run.py (it needs that pipeline run)."""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import pytest
import yaml
from mlp_pipeline.tune import experiment_component, main, sample, trial_command

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "platform.yaml"


def test_learning_rate_is_sampled_log_uniformly() -> None:
    _, component = experiment_component(SPEC, None)
    assert component.tuning is not None
    (rate,) = [p for p in component.tuning.parameters if p.name == "learning-rate"]
    assert rate.distribution == "logUniform" and rate.min is not None and rate.max is not None
    rng = random.Random(7)
    values = [float(sample(rng, [rate])["learning-rate"]) for _ in range(4000)]
    assert rate.min <= min(values) and max(values) <= rate.max
    # Log-uniform: half the draws below the geometric mean of the bounds (uniform: about 12%),
    # and each decade equally likely per unit of log.
    below = sum(v < math.sqrt(rate.min * rate.max) for v in values) / len(values)
    assert 0.47 < below < 0.53
    uniform = rate.model_copy(update={"distribution": None})
    plain = [float(sample(rng, [uniform])["learning-rate"]) for _ in range(4000)]
    assert sum(v < math.sqrt(rate.min * rate.max) for v in plain) / len(plain) < 0.2


def test_trial_command_is_the_katib_trials_with_local_places(tmp_path: Path) -> None:
    experiment = yaml.safe_load((ROOT / "base" / "tune-model" / "experiment.yaml").read_text())
    template = experiment["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]
    (container,) = template["spec"]["containers"]
    _, component = experiment_component(SPEC, "tune-model")
    places: dict[str, str | None] = {
        "data-from-registry": str(tmp_path / "registry"),
        "output": str(tmp_path / "trial-0"),
        "epochs": "2",
        "seed": "1",
    }
    point = {"learning-rate": "0.01", "hidden-units": "8", "dropout": "0.1", "batch-size": "16"}
    command = trial_command(component, places, point)
    assert (
        command[:3]
        == [sys.executable, "-m", "mlp_train"]
        == [
            sys.executable,
            *container["command"][1:],
        ]
    )
    katib = [a for a in container["args"] if "${trialParameters." not in a]
    ours = command[3 : 3 + len(katib)]
    changed = {
        a.partition("=")[0].removeprefix("--") for a, b in zip(katib, ours, strict=True) if a != b
    }
    assert changed == set(places)  # the same options in the same order; only places differ
    assert "--model=digits" in ours and "--version=production" in ours
    assert command[-4:] == [f"--{k}={v}" for k, v in point.items()]


def test_search_space_and_objective_follow_the_spec(tmp_path: Path) -> None:
    spec = yaml.safe_load(SPEC.read_text())
    tuning = spec["components"]["tune-model"]["tuning"]
    tuning["parameters"] = [{"name": "dropout", "type": "double", "min": 0.2, "max": 0.3}]
    tuning["objective"] = {"type": "minimize", "metric": "val_loss"}
    copy = tmp_path / "platform.yaml"
    copy.write_text(yaml.safe_dump(spec), encoding="utf-8")
    _, component = experiment_component(copy, None)
    assert component.tuning is not None
    assert [p.name for p in component.tuning.parameters] == ["dropout"]
    assert set(sample(random.Random(1), component.tuning.parameters)) == {"dropout"}


def test_bad_spec_is_one_error_naming_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = yaml.safe_load(SPEC.read_text())
    rate = spec["components"]["tune-model"]["tuning"]["parameters"][0]
    rate.update(min=0.0, distribution="logUniform")
    spec["components"]["tune-model"]["tuning"]["parameters"][1]["distribution"] = "zipf"
    copy = tmp_path / "platform.yaml"
    copy.write_text(yaml.safe_dump(spec), encoding="utf-8")
    argv = ["--spec", str(copy), "--data", str(tmp_path), "--workdir", str(tmp_path / "w")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "components.tune-model.tuning.parameters[1].distribution" in err
    assert "Traceback" not in err and not (tmp_path / "w").exists()


def test_missing_registry_says_to_run_the_pipeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--registry", str(tmp_path / "none"), "--workdir", str(tmp_path / "w")]
    assert main(argv) == 1
    assert "no registry there; run `make pipeline` first" in capsys.readouterr().err


def test_failing_trials_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--data", str(tmp_path / "nothing"), "--workdir", str(tmp_path), "--trials", "1"]
    assert main(argv) == 1
    assert "tune: all 1 trials failed; last error: train: " in capsys.readouterr().err
