"""Credentials reach the object store from Secrets, by name and key, and only that way.

Locally, with a real S3 server (moto, as in components/common/tests) that *requires*
credentials: every component whose spec says `secretEnv` gets its container's environment
exactly as the kubelet would build it from the rendered objects (env values, `secretKeyRef`
from the Secret the spec names, `envFrom` the component's ConfigMap), and the shared storage
code (mlp_common.storage, what serve/drift/train use for s3://) reads an object with it. The
same run without the Secret's values is refused by the server, so the Secret is what lets
the pod in. The ConfigMap's AWS_ENDPOINT_URL (the in-cluster MinIO) is the one value replaced:
with the local server's address.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from platformgen.builders import build_platform
from platformgen.naming import Manifest
from platformgen.spec.load import load_spec

from support import ROOT

SPEC = load_spec(ROOT / "platform.yaml")
ENVIRONMENT = sorted(SPEC.environments)[0]
WIRED = sorted(name for name, c in SPEC.components.items() if c.secret_env)
BUCKET, KEY = "mlp-artifacts", "day2/wiring-check.txt"
VENV_BIN = Path(sys.executable).parent
SECRET_VALUES = {"accesskey": "AccessKeyId", "secretkey": "SecretAccessKey"}
"""What the installer puts under each Secret key (KFP's mlpipeline-minio-artifact layout)."""


@pytest.fixture(scope="module")
def s3_with_auth() -> Iterator[tuple[str, dict[str, str]]]:
    """A moto S3 server that demands valid credentials after its first five calls, which
    create an IAM user with S3 access, its key, and the object to read."""
    pytest.importorskip("moto")
    import boto3

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "5"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        bootstrap: dict[str, Any] = {
            "endpoint_url": endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": "bootstrap",
            "aws_secret_access_key": "bootstrap",
        }
        iam = boto3.client("iam", **bootstrap)
        iam.create_user(UserName="mlp")
        key = iam.create_access_key(UserName="mlp")["AccessKey"]
        iam.put_user_policy(
            UserName="mlp",
            PolicyName="object-store",
            PolicyDocument='{"Version": "2012-10-17", "Statement": '
            '[{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}',
        )
        s3 = boto3.client("s3", **bootstrap)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"reached with credentials from a Secret\n")
        yield endpoint, {k: str(key[v]) for k, v in SECRET_VALUES.items()}
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def pod_container(objects: list[Manifest], name: str) -> dict[str, Any]:
    """The main container of the pods component `name`'s workload creates."""
    for m in objects:
        spec = m.get("spec", {})
        # A Kubeflow Trainer TrainingRuntime: a JobSet template of replicated Jobs.
        replicated = spec.get("template", {}).get("spec", {}).get("replicatedJobs", [])
        for template in (
            *(job["template"]["spec"]["template"]["spec"] for job in replicated),
            spec.get("template", {}).get("spec"),
            spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec"),
            spec.get("predictor"),
            spec.get("driver", {}).get("template", {}).get("spec"),  # a SparkApplication's
            spec.get("trialTemplate", {})
            .get("trialSpec", {})
            .get("spec", {})
            .get("template", {})
            .get("spec"),
        ):
            labels = m["metadata"].get("labels", {})
            if (
                template
                and "containers" in template
                and labels.get("app.kubernetes.io/name") == name
            ):
                return dict(template["containers"][0])
    raise AssertionError(f"no pod template for {name}")


def kubelet_environment(
    objects: list[Manifest], container: dict[str, Any], secrets: dict[str, dict[str, str]]
) -> dict[str, str]:
    """The container's environment as the kubelet builds it: envFrom first, then env."""
    out: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = source["configMapRef"]["name"]
        [config_map] = [
            m for m in objects if m["kind"] == "ConfigMap" and m["metadata"]["name"] == ref
        ]
        out.update(config_map["data"])
    for item in container.get("env", []):
        if "value" in item:
            out[item["name"]] = item["value"]
        elif "secretKeyRef" in item["valueFrom"]:
            ref = item["valueFrom"]["secretKeyRef"]
            out[item["name"]] = secrets[ref["name"]][ref["key"]]
        # Downward-API values (fieldRef: the pod's own labels, say) are not credentials.
    return out


READ = (
    "import sys\n"
    "from mlp_common.storage import filesystem\n"
    "fs, path = filesystem(sys.argv[1])\n"
    "sys.stdout.write(fs.cat(path).decode())\n"
)


def read_object(environment: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", READ, f"s3://{BUCKET}/{KEY}"],
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "MLP_CACHE_DIR": str(tmp_path / "cache"),
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
            "AWS_EC2_METADATA_DISABLED": "true",
            **environment,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_model_server_drift_monitor_and_trials_take_credentials_from_secrets() -> None:
    assert {"model-server", "drift-monitor", "tune-model"} <= set(WIRED)


@pytest.mark.parametrize("name", WIRED)
def test_credentials_from_the_secret_reach_the_object_store(
    name: str, s3_with_auth: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    endpoint, key = s3_with_auth
    objects = [m for group in build_platform(SPEC, ENVIRONMENT).values() for m in group]
    container = pod_container(objects, name)
    refs = {
        item["valueFrom"]["secretKeyRef"]["name"]
        for item in container["env"]
        if "secretKeyRef" in item.get("valueFrom", {})
    }
    assert refs, f"{name}: no env var comes from a Secret"
    secrets = {secret: dict(key) for secret in refs}
    environment = kubelet_environment(objects, container, secrets)
    assert set(environment) >= {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"}
    environment["AWS_ENDPOINT_URL"] = endpoint  # the in-cluster MinIO, played by the local server

    result = read_object(environment, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == "reached with credentials from a Secret\n"

    without = {
        k: v for k, v in environment.items() if not k.startswith("AWS_") or k == "AWS_ENDPOINT_URL"
    }
    denied = read_object(without, tmp_path)
    assert denied.returncode != 0, "the server let a pod without the Secret's credentials in"
    wrong = {**environment, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    assert read_object(wrong, tmp_path).returncode != 0, "the server accepted a wrong secret"
