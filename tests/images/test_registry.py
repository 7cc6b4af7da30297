"""The built images through a real registry: the CNCF distribution registry (`make
registry-tools`) on 127.0.0.1, as a node pulls them. `scripts/image_registry.py push`
copies each OCI archive unchanged (the registry serves the recorded digest), a client pulls
an image back and runs it, and `hosts` writes the containerd configuration that sends the
images' registry host to it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from support import load_script, oci_registry


@pytest.fixture(scope="module")
def image_registry() -> ModuleType:
    """scripts/image_registry.py, loaded when a test runs (see `support.oci_registry`)."""
    return load_script("image_registry")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with oci_registry(tmp_path_factory.mktemp("registry")) as address:
        yield address


def test_push_serves_the_recorded_digests_and_a_pulled_image_runs(
    built: dict[str, dict[str, Any]],
    registry: str,
    podman_run: list[str],
    image_registry: ModuleType,
) -> None:
    records = list(built.values())
    pushed = image_registry.push(records, registry)
    assert set(pushed) == {reference for r in records for reference in r["references"]}
    for record in records:
        for reference in record["references"]:
            target = pushed[reference]
            assert target == f"{registry}/{reference.split('/', 1)[1]}"
            inspected = subprocess.run(
                ["skopeo", "inspect", "--tls-verify=false", f"docker://{target}"],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            assert json.loads(inspected.stdout)["Digest"] == record["digest"]
    drift = built["components/drift"]
    target = pushed[drift["references"][0]]
    subprocess.run(["podman", "pull", "--quiet", "--tls-verify=false", target], check=True,
                   capture_output=True)  # fmt: skip
    try:
        out = subprocess.run(
            [*podman_run, "--entrypoint", "python", target, "-c",
             "import os, mlp_drift; print(os.getuid())"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert out.stdout.split() == ["10001"]
    finally:
        subprocess.run(["podman", "rmi", target], capture_output=True)


def test_hosts_send_every_image_registry_to_the_local_one(
    tmp_path: Path, image_registry: ModuleType
) -> None:
    references = ["registry.example.com/mlp/a:1", "registry.example.com/mlp/b:2", "python:3.11"]
    written = image_registry.write_hosts(tmp_path, references, "127.0.0.1:5999")
    assert [p.relative_to(tmp_path).as_posix() for p in written] == [
        "docker.io/hosts.toml",
        "registry.example.com/hosts.toml",
    ]
    import tomllib

    config = tomllib.loads((tmp_path / "registry.example.com/hosts.toml").read_text())
    assert config == {
        "server": "http://127.0.0.1:5999",
        "host": {"http://127.0.0.1:5999": {"capabilities": ["pull", "resolve"]}},
    }
