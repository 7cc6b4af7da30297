"""The long-running monitor, as the Deployment runs it: a real process on loopback.

Rows arrive as KServe's payload logger sends them; the reference follows a real (filesystem)
model registry's production pointer; Alertmanager webhooks start a real child process."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlp_common.registry import ModelRegistry
from mlp_common.statistics import bin_counts, feature_statistics
from mlp_drift.cli import main
from prometheus_client.parser import text_string_to_metric_families

from .conftest import shift

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _samples(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def _wait_for(predicate, what: str, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _post(
    url: str,
    body: bytes,
    ce_type: str = "org.kubeflow.serving.inference.request",
) -> tuple[int, str]:
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
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@contextlib.contextmanager
def monitor(tmp_path: Path, *args: str) -> Iterator[str]:
    """Run `mlp-drift serve ARGS` on a free port; yield its base URL; stop it with SIGTERM."""
    stderr_path = tmp_path / "monitor.stderr"
    stderr = stderr_path.open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlp_drift", "serve", "--host", "127.0.0.1", "--port", "0",
         *args],
        stderr=stderr,
    )  # fmt: skip
    try:

        def bound() -> str | None:
            assert process.poll() is None, stderr_path.read_text()
            match = re.search(r"http://(127\.0\.0\.1:\d+)/metrics", stderr_path.read_text())
            return match.group(1) if match else None

        yield "http://" + _wait_for(bound, "the monitor to listen")
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
        stderr.close()
    assert code == 0, stderr_path.read_text()


def _register(registry: ModelRegistry, frame: pd.DataFrame, tmp_path: Path, name: str) -> int:
    """A registry version whose statistics.json describes `frame` (the model file is a stub:
    the monitor reads only statistics.json and features.json)."""
    bundle = tmp_path / name
    bundle.mkdir()
    (bundle / "model.keras").write_bytes(b"stub")
    features = [c for c in frame.columns if c != "target"]
    (bundle / "features.json").write_text(json.dumps({"features": features}))
    (bundle / "statistics.json").write_text(json.dumps(feature_statistics(frame[features])))
    metadata = {"gate": {"decision": "promote"}}
    return registry.register("cancer", bundle, metadata).version


def test_rows_are_counted_per_bin_of_the_local_reference(
    cancer_files: dict[str, Path], cancer_split: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    reference, holdout = cancer_split
    with monitor(tmp_path, "--reference", str(cancer_files["reference"])) as base:
        assert _wait_for(lambda: _get(base + "/readyz")[0] == 200, "readiness")
        assert _get(base + "/healthz") == (200, "ok\n")
        assert _get(base + "/nope")[0] == 404

        samples = _samples(_get(base + "/metrics")[1])
        labels = {"feature": "mean radius", "reference_version": "local"}
        ratios = [
            _value(samples, "mlp_drift_reference_ratio", bin=str(i), **labels) for i in range(10)
        ]
        stats = feature_statistics(reference[["mean radius"]])["columns"]["mean radius"]
        counts = stats["histogram"]["counts"]
        assert ratios == pytest.approx([c / sum(counts) for c in counts])
        assert _value(samples, "mlp_drift_reference_version") == 0
        assert _value(samples, "mlp_drift_feature_observations_total", bin="0", **labels) == 0

        # v1 and v2 requests, as KServe's payload logger forwards them.
        shifted = shift(holdout).drop(columns="target").to_numpy()
        first, rest = shifted[:100], shifted[100:]
        v1 = {"instances": first.tolist()}
        v2 = {
            "inputs": [
                {"name": "x", "shape": list(rest.shape), "datatype": "FP64",
                 "data": rest.ravel().tolist()}
            ]
        }  # fmt: skip
        assert _post(base + "/log", json.dumps(v1).encode())[0] == 202
        assert _post(base + "/log", json.dumps(v2).encode())[0] == 202
        # Response events, bad bodies and wrong widths change nothing.
        ce_response = "org.kubeflow.serving.inference.response"
        assert _post(base + "/log", b'{"predictions": [0]}', ce_type=ce_response)[0] == 202
        assert _post(base + "/log", b"{not json")[0] == 400
        status, body = _post(base + "/log", json.dumps({"instances": [[1.0, 2.0]]}).encode())
        assert (status, "instance has 2 values, expected 30" in body) == (400, True)
        assert _post(base + "/log", b"[" * 2_000_001)[0] == 413
        assert _post(base + "/other", b"{}")[0] == 404
        assert _post(base + "/alerts", b"{}")[0] == 404  # retraining is off

        samples = _samples(_get(base + "/metrics")[1])
        assert _value(samples, "mlp_drift_rows_total") == len(shifted)
        edges = stats["histogram"]["edges"]
        want = bin_counts(edges, shifted[:, 0])  # "mean radius" is the first column
        got = [
            _value(samples, "mlp_drift_feature_observations_total", bin=str(i), **labels)
            for i in range(len(edges) + 1)
        ]
        assert got == want.tolist()


def test_reference_follows_the_production_pointer(
    cancer_split: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    reference, holdout = cancer_split
    registry = ModelRegistry(tmp_path / "registry")
    v1 = _register(registry, reference, tmp_path, "v1")
    v2 = _register(registry, shift(holdout), tmp_path, "v2")
    args = ["--registry", str(tmp_path / "registry"), "--model", "cancer", "--interval", "0.2"]
    with monitor(tmp_path, *args) as base:
        status, body = _get(base + "/readyz")
        assert status == 503
        assert "model 'cancer' has no production version yet" in body
        row = {"instances": [holdout.drop(columns="target").iloc[0].tolist()]}
        assert _post(base + "/log", json.dumps(row).encode())[0] == 503

        registry.promote("cancer", v1, reason="test")
        assert _get(base + "/readyz") == (200, f"ok: reference version {v1}\n")
        samples = _samples(_get(base + "/metrics")[1])
        assert _value(samples, "mlp_drift_reference_version") == v1
        assert _post(base + "/log", json.dumps(row).encode())[0] == 202

        registry.promote("cancer", v2, reason="test")

        def switched() -> Samples | None:
            found = _samples(_get(base + "/metrics")[1])
            return found if _value(found, "mlp_drift_reference_version") == v2 else None

        samples = _wait_for(switched, "the switch to version 2")
        versions = {
            dict(labels)["reference_version"]
            for name, labels in samples
            if name == "mlp_drift_feature_observations_total"
        }
        assert versions == {str(v2)}, "the old version's counters must go with it"
        stats = feature_statistics(shift(holdout)[["mean radius"]])["columns"]["mean radius"]
        counts = stats["histogram"]["counts"]
        ratio = _value(
            samples, "mlp_drift_reference_ratio",
            feature="mean radius", bin="0", reference_version=str(v2),
        )  # fmt: skip
        assert ratio == pytest.approx(counts[0] / sum(counts))


def test_a_version_without_histograms_is_a_clear_error(
    cancer_split: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    reference, _ = cancer_split
    registry = ModelRegistry(tmp_path / "registry")
    version = _register(registry, reference, tmp_path, "old")
    path = registry.get("cancer", version).path / "statistics.json"
    document = json.loads(path.read_text())
    for column in document["columns"].values():
        column.pop("histogram")  # as validate wrote it before drift histograms
    path.write_text(json.dumps(document))
    registry.promote("cancer", version, reason="test")
    args = ["--registry", str(tmp_path / "registry"), "--model", "cancer"]
    with monitor(tmp_path, *args) as base:
        status, body = _get(base + "/readyz")
    assert status == 503
    assert "statistics.json: column 'mean radius' has no histogram" in body


def test_bad_usage_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, message in (
        (["serve"], "--registry (or MLP_REGISTRY) and --model are required"),
        (["serve", "--registry", "r", "--model", "m", "--reference", "x.csv"], "not both"),
        (["serve", "--reference", "x.csv", "--retrain", "kfp"], "needs --kfp-host"),
        (["serve", "--reference", "x.csv", "--port", "70000"], "must be 0-65535"),
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert message in capsys.readouterr().err


def test_a_bad_local_reference_fails_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["serve", "--reference", str(tmp_path / "missing.csv"), "--port", "0"])
    assert code == 1
    assert "missing.csv: no such file" in capsys.readouterr().err


def test_counts_agree_with_the_python_psi(cancer_split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """PSI from the histogram counts (what the recording rules see) equals PSI on raw values."""
    from mlp_drift.core import population_stability_index, psi_from_counts

    reference, holdout = cancer_split
    ref = reference["mean radius"].to_numpy(dtype=np.float64)
    cur = shift(holdout)["mean radius"].to_numpy(dtype=np.float64)
    histogram = feature_statistics(reference[["mean radius"]])["columns"]["mean radius"]
    counts = histogram["histogram"]["counts"]
    current = bin_counts(histogram["histogram"]["edges"], cur)
    assert psi_from_counts(counts, current) == population_stability_index(ref, cur, 10)
