"""Files and values the cluster or its controllers would reject are refused at load: exit 1,
`error: platform.yaml: <path>: <message>`, no traceback, and no file changed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from platformgen.cli import main
from platformgen.spec.admission import cron_problem
from platformgen.spec.credentials import credential_reason

from support import ROOT, SPECS, snapshot

TINY = """\
platform: {name: tiny, partOf: tiny-platform}
namespaces:
  apps: {}
components:
  api: {kind: Deployment, namespace: apps, role: web, image: i, config: {A: b}}
environments: {dev: {}}
"""


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real entry point in a fresh process: what a user sees, traceback included."""
    return subprocess.run(
        [sys.executable, "-m", "platformgen", *args], capture_output=True, text=True, check=False
    )


def rendered_repo(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    out = tmp_path / "repo"
    assert main(["render", "--spec", str(SPECS / "minimal.yaml"), "--out", str(out)]) == 0
    return out, snapshot(out)


def assert_refused(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr


def test_a_spec_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    out, before = rendered_repo(tmp_path)
    spec = tmp_path / "platform.yaml"
    spec.write_bytes(TINY.encode().replace(b"tiny-platform", b"tiny-\xe9platform"))
    result = run_cli("render", "--spec", str(spec), "--out", str(out))
    assert_refused(result, "error: platform.yaml: not UTF-8 text")
    assert snapshot(out) == before


def test_a_spec_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    out, before = rendered_repo(tmp_path)
    folder = tmp_path / "platform.yaml"
    folder.mkdir()
    assert_refused(run_cli("render", "--spec", str(folder), "--out", str(out)), "cannot read")
    assert_refused(run_cli("render", "--spec", str(tmp_path / "nope.yaml")), "cannot read")
    assert snapshot(out) == before


def test_a_compiled_pipeline_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    out, before = rendered_repo(tmp_path)
    (tmp_path / "compiled.yaml").write_bytes(b"kind: Pipeline\nname: \xff\xfe\n")
    spec = tmp_path / "platform.yaml"
    spec.write_text(
        TINY + "pipelines:\n  train: {namespace: apps, compiled: compiled.yaml, steps: {}}\n"
    )
    result = run_cli("render", "--spec", str(spec), "--out", str(out))
    assert_refused(
        result, "error: platform.yaml: pipelines.train.compiled: compiled.yaml is not UTF-8"
    )
    assert snapshot(out) == before


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_an_output_folder_that_cannot_be_written_is_refused(tmp_path: Path, where: str) -> None:
    spec = tmp_path / "platform.yaml"
    spec.write_text(TINY)
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder\n")
    out = blocker if where == "a file" else blocker / "repo"
    result = run_cli("render", "--spec", str(spec), "--out", str(out))
    assert_refused(result, f"error: cannot write to {out}")
    assert blocker.read_text() == "not a folder\n"


def pipeline_spec(tmp_path: Path, config_maps: str) -> Path:
    shutil.copy(ROOT / "pipelines" / "compiled" / "mlp-training.k8s.yaml", tmp_path / "p.yaml")
    spec = tmp_path / "platform.yaml"
    spec.write_text(
        TINY
        + "pipelines:\n  train:\n    namespace: apps\n    compiled: p.yaml\n"
        + f"    configMaps: {config_maps}\n"
        + "    steps:\n"
        + "".join(
            f"      {s}: {{image: registry.example.com/mlp/{s}-python}}\n"
            for s in ("ingest", "validate", "preprocess", "train", "evaluate", "register")
        )
    )
    return spec


def test_two_objects_with_one_identity_are_a_spec_error(tmp_path: Path) -> None:
    """A pipeline ConfigMap named like a component (which has config) in the same namespace."""
    out, before = rendered_repo(tmp_path)
    spec = pipeline_spec(tmp_path, "{api: {endpoint: x}}")
    result = run_cli("render", "--spec", str(spec), "--out", str(out))
    assert_refused(
        result,
        "error: platform.yaml: pipelines.train: its ConfigMap apps/api is also rendered for 'api'",
    )
    assert "AssertionError" not in result.stderr
    assert snapshot(out) == before


def test_objects_of_one_kind_in_one_namespace_get_distinct_files(tmp_path: Path) -> None:
    spec = pipeline_spec(tmp_path, "{store: {endpoint: x}, features: {path: y}}")
    out = tmp_path / "repo"
    result = run_cli("render", "--spec", str(spec), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "base/train/config-map-store.yaml").is_file()
    assert (out / "base/train/config-map-features.yaml").is_file()


@pytest.mark.parametrize(
    "schedule",
    [
        "0 3 * * 1",
        "*/15 * * * *",
        "0 0 1 jan *",
        "0 9-17/2 * * MON-FRI",
        "5/10 * * * *",
        "0 0 ? * *",
        "0,30 1,13 1-7 */3 0",
        "@hourly",
        "@every 1h30m",
    ],
)
def test_valid_cron_schedules_are_accepted(schedule: str) -> None:
    assert cron_problem(schedule) is None


@pytest.mark.parametrize(
    ("schedule", "valid"),
    [
        ("@every 2562047h", True),
        ("@every 9223372036854775807ns", True),
        ("@every 2562048h", False),
        ("@every 9223372036854775808ns", False),
        ("@every 99999999999999999999h", False),
    ],
)
def test_every_is_at_most_go_s_longest_duration(schedule: str, valid: bool) -> None:
    """Go's time.ParseDuration (robfig/cron's @every) holds int64 nanoseconds: one past it is
    "invalid duration", and the apiserver refuses the CronJob."""
    assert (cron_problem(schedule) is None) == valid


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AWS_ENDPOINT_URL", "http://minio.kubeflow.svc.cluster.local:9000"),
        ("MLP_DRIFT_REFERENCE", "s3://mlp-artifacts/datasets/wine/reference/data.parquet"),
        ("TOKEN_FILE", "/var/run/secrets/kubernetes.io/serviceaccount/token"),
        ("SECRET_NAME", "mlp-object-store-credentials"),
        ("IMAGE", "registry.example.com/a@sha256:" + "a" * 64),
        ("MODEL_NAME", "wine"),
    ],
)
def test_ordinary_configuration_is_not_a_credential(name: str, value: str) -> None:
    assert credential_reason(name, value) is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ("PGPASSWORD", "hunter2"),
        ("CONNECTION", "mysql://root:toor@db:3306/x"),
        ("GITHUB", "ghp_" + "A1b2C3d4E5" * 4),
        (
            "SIGNED",
            ".".join(["eyJhbGciOiJIUzI1NiJ9", "eyJzdWIiOiIxMjM0NTY3ODkwIn0", "c2lnbmF0dXJl"]),
        ),
        ("BLOB", "Zk9x2LmQ8rT4vW7yB1nC5dF3gH6jK0pS"),
    ],
)
def test_credentials_are_recognised(name: str, value: str) -> None:
    assert credential_reason(name, value) is not None
