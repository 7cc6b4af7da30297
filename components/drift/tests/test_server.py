"""The long-running exporter, as the Deployment runs it: a real process on loopback."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from mlp_drift.cli import main
from prometheus_client.parser import text_string_to_metric_families

from .conftest import SHIFTED_FEATURES, shift


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _gauges(text: str) -> dict[tuple[str, str | None], float]:
    return {
        (s.name, s.labels.get("feature") or s.labels.get("outcome")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _wait_for(predicate, what: str, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_exporter_serves_gauges_that_follow_the_request_log(
    cancer_files: dict[str, Path], cancer_split: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    _, holdout = cancer_split
    log = tmp_path / "requests.jsonl"
    stderr = (tmp_path / "stderr.txt").open("w+")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "mlp_drift", "serve",
            "--reference", str(cancer_files["reference"]),
            "--request-log", str(log),
            "--host", "127.0.0.1", "--port", "0", "--interval", "0.2",
        ],
        stderr=stderr,
    )  # fmt: skip
    try:

        def bound() -> str | None:
            stderr.seek(0)
            match = re.search(r"http://(127\.0\.0\.1:\d+)/metrics", stderr.read())
            return match.group(1) if match else None

        base = "http://" + _wait_for(bound, "the exporter to listen")
        assert _wait_for(lambda: _get(base + "/readyz")[0] == 200, "readiness")
        assert _get(base + "/healthz") == (200, "ok\n")
        assert _get(base + "/nope")[0] == 404

        # No log yet: ready, but no decision and no per-feature series.
        gauges = _gauges(_get(base + "/metrics")[1])
        assert gauges[("mlp_drift_detected", None)] == 0
        assert gauges[("mlp_drift_current_samples", None)] == 0
        assert gauges[("mlp_drift_evaluations_total", "insufficient")] >= 1
        assert not any(name == "mlp_feature_drift_psi" for name, _ in gauges)

        # Unshifted traffic: judged, no drift.
        rows = holdout.drop(columns="target").to_numpy().tolist()
        log.write_text(
            json.dumps({"ts": 1.0, "model": "m", "version": 1, "instances": rows}) + "\n"
        )
        gauges = _wait_for(
            lambda: (
                (g := _gauges(_get(base + "/metrics")[1]))
                and g[("mlp_drift_current_samples", None)] == len(rows)
                and g
            ),
            "the unshifted window",
        )
        assert gauges[("mlp_drift_detected", None)] == 0
        assert gauges[("mlp_feature_drift_psi", "mean radius")] < 0.2

        # Shifted traffic replaces the window (--window 5000 > both, so use a fresh log).
        shifted = shift(holdout).drop(columns="target").to_numpy().tolist()
        log.write_text(
            json.dumps({"ts": 2.0, "model": "m", "version": 1, "instances": shifted}) + "\n"
        )
        gauges = _wait_for(
            lambda: (
                (g := _gauges(_get(base + "/metrics")[1]))
                and g[("mlp_drift_detected", None)] == 1
                and g
            ),
            "the drift alert",
        )
        for name in SHIFTED_FEATURES:
            assert gauges[("mlp_feature_drift_detected", name)] == 1
        assert gauges[("mlp_feature_drift_detected", "mean texture")] == 0
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=20)
        stderr.close()
    assert code == 0


def _post(url: str, body: bytes, ce_type: str = "org.kubeflow.serving.inference.request") -> int:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={  # what KServe's payload logger sends (CloudEvents, binary content mode)
            "Content-Type": "application/json",
            "Ce-Specversion": "1.0",
            "Ce-Type": ce_type,
            "Ce-Source": "http://localhost:9081/",
            "Ce-Id": "1",
            "Ce-Inferenceservicename": "model-server",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_exporter_takes_rows_from_the_kserve_payload_logger(
    cancer_files: dict[str, Path], cancer_split: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    _, holdout = cancer_split
    stderr = (tmp_path / "stderr.txt").open("w+")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "mlp_drift", "serve",
            "--reference", str(cancer_files["reference"]),
            "--port", "0", "--interval", "0.2", "--max-body-bytes", "200000",
        ],
        stderr=stderr,
    )  # fmt: skip
    try:

        def bound() -> str | None:
            stderr.seek(0)
            match = re.search(r"http://(127\.0\.0\.1:\d+)/metrics", stderr.read())
            return match.group(1) if match else None

        base = "http://" + _wait_for(bound, "the exporter to listen")
        shifted = shift(holdout).drop(columns="target").to_numpy()
        half = len(shifted) // 2
        v1 = {"instances": shifted[:half].tolist()}
        rest = shifted[half:]
        v2 = {
            "inputs": [
                {
                    "name": "features",
                    "shape": list(rest.shape),
                    "datatype": "FP64",
                    "data": rest.ravel().tolist(),
                }
            ]
        }
        assert _post(base + "/log", json.dumps(v1).encode()) == 202
        assert _post(base + "/log", json.dumps(v2).encode()) == 202
        # Response events, bad bodies and wrong widths change nothing.
        response_event = json.dumps({"predictions": [0]}).encode()
        ce_response = "org.kubeflow.serving.inference.response"
        assert _post(base + "/log", response_event, ce_type=ce_response) == 202
        assert _post(base + "/log", b"{not json") == 400
        assert _post(base + "/log", json.dumps({"instances": [[1.0, 2.0]]}).encode()) == 400
        assert _post(base + "/log", b"[" * 200_001) == 413
        assert _post(base + "/other", b"{}") == 404

        gauges = _wait_for(
            lambda: (
                (g := _gauges(_get(base + "/metrics")[1]))
                and g[("mlp_drift_detected", None)] == 1
                and g
            ),
            "the drift alert from pushed rows",
        )
        assert gauges[("mlp_drift_current_samples", None)] == len(shifted)
        for name in SHIFTED_FEATURES:
            assert gauges[("mlp_feature_drift_detected", name)] == 1
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=20)
        stderr.close()
    assert code == 0


def test_exporter_refuses_a_bad_reference_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "serve",
            "--reference", str(tmp_path / "missing.csv"),
            "--request-log", str(tmp_path / "log.jsonl"),
            "--port", "0",
        ]
    )  # fmt: skip
    assert code == 1
    assert "missing.csv: no such file" in capsys.readouterr().err
