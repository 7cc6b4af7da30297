"""The images `make images` builds from the generated Dockerfiles, run with a real runtime.

Whatever a Dockerfile says, each image must: carry the spec's user and run as it (UID and GID
defaults.runAsUser), import the package its entrypoint runs, keep nothing of the host files
mounted for the build (the CA bundle and pip.conf), and match its exported OCI archive. The
pipeline image then trains the demo's model with the local pipeline, and the serve image serves
that registry: /v2/health/live, and a v1 and a v2 answer that agree.

Containers run with podman and runc (Debian's, installed by scripts/build-images.sh), host
network on loopback only, under the pods' constraints: read-only root, /tmp a tmpfs, every
capability dropped, no privilege escalation.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from support import ROOT

Podman = Callable[..., str]
Built = dict[str, dict[str, Any]]


def _spec():  # type: ignore[no-untyped-def]
    from platformgen.spec.load import load_spec

    return load_spec(ROOT / "platform.yaml")


FOLDERS = sorted(_spec().builds.images)


def _config(images: ModuleType, reference: str) -> dict[str, Any]:
    document = images.image_inspect(reference)
    assert document is not None, f"{reference}: not in buildah's storage"
    config: dict[str, Any] = document["OCIv1"]["config"]
    return config


@pytest.mark.parametrize("folder", FOLDERS)
def test_image_runs_as_the_spec_user_and_imports_its_entrypoint_module(
    images: ModuleType, built: Built, podman: Podman, folder: str
) -> None:
    spec = _spec()
    record = built[folder]
    user = spec.defaults.run_as_user
    (image,) = [image for image in images.plan(spec) if image.folder == folder]
    for reference in image.references:
        assert reference in record["references"]
        assert images.image_id(reference) == record["image_id"], f"{reference}: not this build"
    config = _config(images, record["references"][0])
    assert config["User"] == f"{user}:{user}"
    entrypoint = config["Entrypoint"]
    assert entrypoint[:2] == ["python", "-m"], entrypoint
    module = entrypoint[2]
    assert module == spec.builds.images[folder].package
    script = f"import os, {module}; print(os.getuid(), os.getgid(), {module}.__file__)"
    out = podman("--entrypoint", "python", record["references"][0], "-c", script).split()
    assert out[:2] == [str(user), str(user)]
    assert out[2] == f"/app/{module}/__init__.py"  # the copied package, not something else


@pytest.mark.parametrize("folder", FOLDERS)
def test_nothing_mounted_for_the_build_stayed_in_the_image(
    images: ModuleType, built: Built, podman: Podman, folder: str
) -> None:
    record = built[folder]
    images.check_no_build_mounts(record["references"][0], record["base"])  # every file
    script = (
        "import hashlib, os; "
        "print(hashlib.sha256(open('/etc/ssl/certs/ca-certificates.crt', 'rb').read())"
        ".hexdigest(), os.path.exists('/etc/pip.conf'))"
    )
    image_bundle, pip_conf = podman("--entrypoint", "python", record["references"][0], "-c",
                                    script).split()  # fmt: skip
    base_bundle, base_pip_conf = podman("--entrypoint", "python", record["base"], "-c",
                                        script).split()  # fmt: skip
    assert (image_bundle, pip_conf) == (base_bundle, base_pip_conf)
    assert pip_conf == "False"
    host = Path("/etc/ssl/certs/ca-certificates.crt")
    if host.is_file():
        host_bundle = hashlib.sha256(host.read_bytes()).hexdigest()
        if host_bundle != base_bundle:  # the host trusts the TLS-inspecting proxy's CA
            assert image_bundle != host_bundle


def test_a_build_that_keeps_a_mounted_host_file_is_caught(
    images: ModuleType, built: Built, tmp_path: Path
) -> None:
    """The check above can fail: a RUN step that copies the mounted CA bundle into the image."""
    host = images.BUILD_MOUNTS[0]
    assert host.is_file(), f"{host}: the host has no CA bundle to mount"
    base = next(iter(built.values()))["base"]
    (tmp_path / "Dockerfile").write_text(f"FROM {base}\nRUN cp {host} /opt/kept.crt\n")
    tag = "localhost/mlp-test/leaky:1"
    subprocess.run(
        ["buildah", "bud", "--pull-never", "--isolation", "chroot", "--network", "host",
         "--volume", f"{host}:{host}:ro", "--tag", tag, str(tmp_path)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    try:
        with pytest.raises(images.ImagesError, match="/opt/kept.crt is a copy of the host's"):
            images.check_no_build_mounts(tag, base)
    finally:
        subprocess.run(["buildah", "rmi", tag], capture_output=True)


@pytest.mark.parametrize("folder", FOLDERS)
def test_archive_holds_the_recorded_image(built: Built, folder: str) -> None:
    record = built[folder]
    with tarfile.open(record["archive"]) as archive:
        member = archive.extractfile("index.json")
        assert member is not None
        index = json.load(member)
        (manifest,) = index["manifests"]
        assert manifest["digest"] == record["digest"]
        assert manifest["annotations"]["org.opencontainers.image.ref.name"]
        blob = archive.extractfile("blobs/sha256/" + record["digest"].removeprefix("sha256:"))
        assert blob is not None
        image_manifest = json.load(blob)
    layers = image_manifest["layers"]
    assert len(layers) >= 2  # the base, the venv, the packages
    assert Path(record["archive"]).stat().st_size == record["archive_bytes"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, body: Any = None, timeout: float = 10) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


@pytest.fixture(scope="module")
def trained(built: Built, podman: Podman) -> Iterator[Path]:
    """The demo's pipeline run locally inside the pipeline image: a registry with the model.

    In a private temporary folder rather than pytest's: pytest prunes its older base folders,
    and other pytest sessions on the same machine would delete this one while it is in use."""
    work = Path(tempfile.mkdtemp(prefix="mlp-images-test-"))
    try:
        os.chown(work, 10001, 10001)
        reference = built["pipelines"]["references"][0]
        podman("--volume", f"{work}:/work", reference, "run", "--runs", "/work/runs",
               "--registry", "/work/registry", "--datasets", "/work/datasets",
               "--summary-json", "/work/summary.json", timeout=1200)  # fmt: skip
        summary = json.loads((work / "summary.json").read_text(encoding="utf-8"))
        assert summary["version"]["version"] == 1, summary
        yield work / "registry"
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def serve_container(built: Built, trained: Path, podman_run: list[str]) -> Iterator[str]:
    """The serve image on a loopback port, serving the trained registry (mounted read-only)."""
    port = _free_port()
    name = f"mlp-serve-test-{port}"
    reference = built["components/serve"]["references"][0]
    run = [*podman_run, "--detach", "--name", name,
           "--volume", f"{trained}:/var/lib/mlp/registry:ro",
           "--env", "MLP_SERVE_HOST=127.0.0.1", "--env", f"MLP_SERVE_PORT={port}",
           reference, "--poll-interval", "0"]  # fmt: skip
    subprocess.run(run, check=True, capture_output=True, timeout=120)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        subprocess.run(["podman", "rm", "--force", "--time", "10", name], capture_output=True)


def test_serve_image_serves_the_model_the_pipeline_image_trained(
    serve_container: str, trained: Path
) -> None:
    deadline = time.monotonic() + 180
    while True:
        try:
            if _get(f"{serve_container}/v2/health/live", timeout=2)[0] == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "the serve image never answered /v2/health/live"
        time.sleep(0.5)
    deadline = time.monotonic() + 120
    while _get(f"{serve_container}/v2/health/ready")[0] != 200:
        assert time.monotonic() < deadline, "never ready"
        time.sleep(0.5)
    from mlp_common.files import read_json
    from mlp_common.registry import ModelRegistry

    version = ModelRegistry(str(trained)).get("digits", "1")
    row = read_json(version.path / "features.json")["mean"]
    status, v1 = _get(f"{serve_container}/v1/models/digits:predict", {"instances": [row]})
    assert status == 200, v1
    tensor = {"name": "features", "shape": [1, len(row)], "datatype": "FP32", "data": row}
    status, v2 = _get(f"{serve_container}/v2/models/digits/infer", {"inputs": [tensor]})
    assert status == 200, v2
    label = next(o["data"][0] for o in v2["outputs"] if o["name"] == "label")
    assert v1["predictions"][0] == label
    # The same registry served on the host by `make demo`'s smoke step: the same answer.
    smoke = subprocess.run(
        [sys.executable, "-m", "mlp_serve.smoke", "--registry", str(trained), "--version", "1"],
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    assert json.loads(smoke.stdout.splitlines()[-1])["v1_prediction"] == label


def test_images_benchmark_smoke_records_size_and_build_times(built: Built, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "run", "images", "--smoke", "--results", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "images.json").read_text(encoding="utf-8"))
    by = {(m["group"], m["series"], m["metric"]): m for m in result["measurements"]}
    for folder, record in built.items():
        assert by[("size", folder, "size_mb")]["median"] == record["size_bytes"] / 1e6
    assert by[("code change", "components/drift", "wall_s")]["median"] > 0
    assert by[("make images", "nothing changed (all cached)", "wall_s")]["median"] < 60
