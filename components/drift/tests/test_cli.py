from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from mlp_drift.cli import EXIT_DRIFT, main
from prometheus_client.parser import text_string_to_metric_families

from .conftest import SHIFTED_FEATURES, shift


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_unshifted_reports_no_drift(
    cancer_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(
        capsys,
        "check",
        "--reference", str(cancer_files["reference"]),
        "--current", str(cancer_files["unshifted"]),
        "--fail-on-drift",
    )  # fmt: skip
    report = json.loads(out)
    assert code == 0
    assert report["drift_detected"] is False
    assert report["sufficient"] is True
    assert len(report["features"]) == 30  # every column but the target


def test_check_shifted_flags_drift_and_writes_report_and_gauges(
    cancer_files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    report_path = tmp_path / "out" / "drift.json"
    metrics_path = tmp_path / "out" / "drift.prom"
    code, out, _ = _run(
        capsys,
        "check",
        "--reference", str(cancer_files["reference"]),
        "--current", str(cancer_files["shifted"]),
        "--output", str(report_path),
        "--metrics-file", str(metrics_path),
        "--fail-on-drift",
    )  # fmt: skip
    assert code == EXIT_DRIFT
    assert json.loads(out) == json.loads(report_path.read_text())
    assert set(json.loads(out)["drifted_features"]) == set(SHIFTED_FEATURES)
    assert "drift detected in: mean radius, worst texture" in caplog.text

    samples = {
        (s.name, s.labels.get("feature")): s.value
        for family in text_string_to_metric_families(metrics_path.read_text())
        for s in family.samples
    }
    assert samples[("mlp_drift_detected", None)] == 1
    assert samples[("mlp_feature_drift_detected", "mean radius")] == 1
    assert samples[("mlp_feature_drift_detected", "mean texture")] == 0
    assert samples[("mlp_feature_drift_psi", "mean radius")] > 0.5
    assert samples[("mlp_drift_psi_threshold", None)] == 0.2


def test_drift_without_fail_flag_exits_zero(
    cancer_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(
        capsys,
        "check",
        "--reference", str(cancer_files["reference"]),
        "--current", str(cancer_files["shifted"]),
    )  # fmt: skip
    assert code == 0 and json.loads(out)["drift_detected"] is True


def test_threshold_and_features_are_options(
    cancer_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(
        capsys,
        "check",
        "--reference", str(cancer_files["reference"]),
        "--current", str(cancer_files["shifted"]),
        "--features", "mean texture,mean area",
        "--psi-threshold", "5",
    )  # fmt: skip
    report = json.loads(out)
    assert code == 0
    assert [f["feature"] for f in report["features"]] == ["mean texture", "mean area"]
    assert report["thresholds"]["psi"] == 5.0


def _write_log(path: Path, frame: pd.DataFrame, per_request: int = 7) -> None:
    rows = frame.drop(columns="target").to_numpy().tolist()
    with path.open("w") as handle:
        for start in range(0, len(rows), per_request):
            record = {
                "ts": 0.0,
                "model": "m",
                "version": 1,
                "instances": rows[start : start + per_request],
            }
            handle.write(json.dumps(record) + "\n")


def test_check_reads_the_request_log(
    cancer_files: dict[str, Path],
    cancer_split: tuple[pd.DataFrame, pd.DataFrame],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, holdout = cancer_split
    log = tmp_path / "requests.jsonl"
    _write_log(log, shift(holdout))
    with log.open("a") as handle:
        handle.write('{"ts": 0, "instances": [[1.0, 2')  # torn last line: the writer is mid-append
    ref = str(cancer_files["reference"])
    code, out, _ = _run(capsys, "check", "--reference", ref, "--current", str(log))
    report = json.loads(out)
    assert code == 0
    assert report["current_samples"] == len(holdout)
    assert set(report["drifted_features"]) == set(SHIFTED_FEATURES)

    # The window keeps only the newest rows: too few to judge.
    code, out, _ = _run(
        capsys, "check", "--reference", ref, "--current", str(log), "--window", "20"
    )
    assert code == 0
    assert json.loads(out)["sufficient"] is False


@pytest.mark.parametrize(
    ("log_text", "message"),
    [
        ('not json\n{"instances": []}\n', "requests.jsonl:1: not JSON"),
        ('{"instances": [[1, 2]]}\n', "requests.jsonl:1: instance has 2 values, expected 30"),
        ('{"rows": []}\n{}\n', "requests.jsonl:1: missing 'instances' list"),
        (
            '{"instances": [{"mean radius": 1}]}\n',
            "requests.jsonl:1: instance lacks features: mean texture",
        ),
    ],
)
def test_bad_request_log_names_the_line(
    cancer_files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    log_text: str,
    message: str,
) -> None:
    log = tmp_path / "requests.jsonl"
    log.write_text(log_text)
    output = tmp_path / "report.json"
    code, out, err = _run(
        capsys,
        "check",
        "--reference", str(cancer_files["reference"]),
        "--current", str(log),
        "--output", str(output),
    )  # fmt: skip
    assert code == 1
    assert message in err
    assert out == "" and not output.exists()


def test_missing_and_unsupported_files_are_clear_errors(
    cancer_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = str(cancer_files["reference"])
    code, _, err = _run(
        capsys, "check", "--reference", ref, "--current", str(tmp_path / "nope.csv")
    )
    assert code == 1 and "nope.csv: no such file" in err

    odd = tmp_path / "data.xlsx"
    odd.write_text("x")
    code, _, err = _run(capsys, "check", "--reference", ref, "--current", str(odd))
    assert code == 1 and "unsupported file type '.xlsx'" in err

    partial = tmp_path / "partial.csv"
    pd.DataFrame({"mean radius": [1.0]}).to_csv(partial, index=False)
    code, _, err = _run(capsys, "check", "--reference", ref, "--current", str(partial))
    assert code == 1 and "columns not found: mean texture" in err

    text = tmp_path / "text.csv"
    frame = pd.read_csv(cancer_files["unshifted"])
    frame["mean radius"] = "big"
    frame.to_csv(text, index=False)
    code, _, err = _run(capsys, "check", "--reference", ref, "--current", str(text))
    assert code == 1 and "column 'mean radius': not numeric" in err


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["check", "--reference", "r.csv"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--reference", "r.csv", "--request-log", "l", "--port", "70000"])
    assert exc.value.code == 2
    assert "must be 0-65535" in capsys.readouterr().err


def test_reference_can_be_a_dataset_directory_with_its_own_target(
    cancer_split: tuple[pd.DataFrame, pd.DataFrame],
    cancer_files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mlp_common.dataset import write_dataset

    reference, _ = cancer_split
    renamed = reference.rename(columns={"target": "diagnosis"})
    write_dataset(tmp_path / "ds", renamed, name="cancer", target="diagnosis", source="test")
    code, out, _ = _run(
        capsys,
        "check",
        "--reference", str(tmp_path / "ds"),
        "--current", str(cancer_files["shifted"]),
    )  # fmt: skip
    report = json.loads(out)
    assert code == 0
    assert "diagnosis" not in [f["feature"] for f in report["features"]]
    assert set(report["drifted_features"]) == set(SHIFTED_FEATURES)


def test_reference_is_required_from_the_flag_or_the_environment(
    cancer_files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MLP_DRIFT_REFERENCE", raising=False)
    with pytest.raises(SystemExit) as exc:
        main(["check", "--current", str(cancer_files["unshifted"])])
    assert exc.value.code == 2
    assert "--reference (or MLP_DRIFT_REFERENCE) is required" in capsys.readouterr().err

    monkeypatch.setenv("MLP_DRIFT_REFERENCE", str(cancer_files["reference"]))
    code, out, _ = _run(capsys, "check", "--current", str(cancer_files["shifted"]))
    assert code == 0 and json.loads(out)["drift_detected"] is True


def test_alert_rules_query_series_the_monitor_exports(cancer_files: dict[str, Path]) -> None:
    """The generated PrometheusRule (platformgen) and the monitor agree on names and labels."""
    import numpy as np
    from mlp_drift import core
    from mlp_drift.metrics import ObservationMetrics
    from mlp_drift.reference import reference_from_table

    from platformgen.builders import prometheus_rule

    reference = reference_from_table(str(cancer_files["reference"]), None, None)
    metrics = ObservationMetrics()
    metrics.set_reference(reference)
    metrics.observe(reference, np.zeros((3, len(reference.names))))
    samples = {
        s.name: s.labels
        for f in text_string_to_metric_families(metrics.exposition().decode())
        for s in f.samples
    }
    for name in (prometheus_rule.DRIFT_OBSERVATIONS, prometheus_rule.DRIFT_REFERENCE_RATIO):
        assert set(samples[name]) == {"feature", "bin", "reference_version"}, name
    assert prometheus_rule.PSI_EPSILON == core.PSI_EPSILON


def test_named_request_log_rows_match_the_reference_by_name(
    cancer_files: dict[str, Path],
    cancer_split: tuple[pd.DataFrame, pd.DataFrame],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """mlp-serve names the columns; a log in another column order still lines up."""
    _, holdout = cancer_split
    features = [c for c in holdout.columns if c != "target"][::-1]  # reversed order
    log = tmp_path / "requests.jsonl"
    record = {"features": features, "instances": holdout[features].to_numpy().tolist()}
    log.write_text(json.dumps(record) + "\n")
    ref = str(cancer_files["reference"])
    code, out, _ = _run(capsys, "check", "--reference", ref, "--current", str(log))
    assert code == 0
    assert json.loads(out)["drift_detected"] is False  # positional reading would flag them all
