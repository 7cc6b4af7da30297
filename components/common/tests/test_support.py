import json
import os
from pathlib import Path

import pytest
from mlp_common.faults import FAULT_ENV, maybe_fail
from mlp_common.files import atomic_directory, write_json_atomic
from mlp_common.metrics import katib_lines, parse_katib_lines
from mlp_common.step import STEP_LOG_ENV, DataError, TransientError, run_step


def test_atomic_directory_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with atomic_directory(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
        (tmp / "b").write_text("2")
        raise RuntimeError("crash")
    assert sorted(p.name for p in target.iterdir()) == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_json_is_deterministic(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "a.json", {"b": 1, "a": [1, 2]})
    assert (tmp_path / "a.json").read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'


def test_katib_lines_round_trip() -> None:
    text = katib_lines({"val_accuracy": 0.9722222, "val_loss": 0.05})
    assert text == "val_accuracy=0.972222\nval_loss=0.050000\n"
    assert parse_katib_lines("noise\n" + text) == {"val_accuracy": 0.972222, "val_loss": 0.05}
    with pytest.raises(ValueError, match="not finite"):
        katib_lines({"val_loss": float("nan")})


def test_run_step_reports_and_logs_attempts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "steps.jsonl"
    monkeypatch.setenv(STEP_LOG_ENV, str(log))

    def bad() -> int:
        raise DataError("column 'x': 3 nulls, rule allows 0")

    assert run_step("validate", bad) == 1
    assert run_step("validate", lambda: 0) == 0
    assert capsys.readouterr().err == "validate: column 'x': 3 nulls, rule allows 0\n"
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["step"], e["status"]) for e in entries] == [
        ("validate", "failed"),
        ("validate", "ok"),
    ]


def test_fault_injection_fails_n_times_then_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FAULT_ENV, f"ingest:2:{tmp_path}")
    for attempt in (1, 2):
        with pytest.raises(TransientError, match=f"attempt {attempt} of 2"):
            maybe_fail("ingest")
    maybe_fail("ingest")
    maybe_fail("train")
    assert (tmp_path / "ingest.attempts").read_text() == "3"
    monkeypatch.delenv(FAULT_ENV)
    maybe_fail("ingest")
    assert os.environ.get(FAULT_ENV) is None


def test_credentials_in_urls_are_redacted_and_nothing_else_changes() -> None:
    from mlp_common.provenance import redact_credentials

    assert redact_credentials("postgresql+psycopg://ml:s3cr3t@db:5432/x") == (
        "postgresql+psycopg://ml:***@db:5432/x"
    )
    assert redact_credentials("mysql://root@h/db?password=x&charset=utf8") == (
        "mysql://root@h/db?password=***&charset=utf8"
    )
    query = "SELECT * FROM read_csv('https://u:p@h/a.csv?X-Amz-Signature=abc')"
    assert redact_credentials(query) == (
        "SELECT * FROM read_csv('https://u:***@h/a.csv?X-Amz-Signature=***')"
    )
    for unchanged in ("sqlite:///data.db", "s3://bucket/k.csv", "sklearn:digits", ""):
        assert redact_credentials(unchanged) == unchanged


def test_code_versions_and_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlp_common.provenance import (
        code_version,
        recorded_code_version,
        training_code_version,
    )
    from mlp_common.step import StepError

    monkeypatch.delenv("MLP_CODE_VERSION", raising=False)
    monkeypatch.delenv("CI", raising=False)
    assert training_code_version().startswith("tree:")
    assert len(code_version().split("-", 1)[0]) == 40  # a git sha (+ -dirty.<hash>)
    assert code_version(tmp_path) == "unknown" == training_code_version(tmp_path)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(StepError, match="code version unknown"):
        training_code_version(tmp_path)
    with pytest.raises(StepError, match="code version unknown"):
        recorded_code_version(tmp_path)
    monkeypatch.setenv("MLP_CODE_VERSION", "v1.2.3")
    assert recorded_code_version(tmp_path) == "v1.2.3" == training_code_version(tmp_path)
