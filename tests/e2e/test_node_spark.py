"""platform.yaml's SparkApplication (preprocess-spark) run to COMPLETED on the real node by the
real Spark Operator v2.5 controller (tests/e2e/controllers.py `running_spark_operator`), with
the preprocess image built from its generated Dockerfile (scripts/build-images.sh) imported into
the node's containerd.

From a spec copy (test_controllers.render, the dev overlay) in which the application's registry
and output are on its work volume instead of the object store (none here), everything else of its
arguments as platform.yaml says, and the endpoint marked `kubernetesApi` is this cluster's API
server (as platform.yaml tells users to set it):

- a hostPath PersistentVolume (the node has no provisioner) pre-bound to the rendered claim
  `preprocess-spark-work`, holding a snapshot written by the repo's own code and a registry whose
  newest version records it (as the pipeline's register step does), owned by the pods' user; the
  driver finds the snapshot through the registry (`--dataset-from-registry`); the driver and the
  executors mount the volume at the same path;
- the namespace's rendered NetworkPolicies (default deny, DNS, the component's own, the Spark
  ports between its pods, the driver's egress to the API server), its RBAC and ServiceAccount,
  under Pod Security `restricted`: the driver asks the API server for executors, the executors
  connect back to the driver, and tasks run on them, all through those policies;
- the application COMPLETED by the operator's status, the driver and at least one executor pod
  running our image (and tasks finished on an executor, by the driver's log), and the split it
  wrote equal to the local run's on the same data (the same stable row-key hash).

Nothing but `imagePullPolicy` (no registry: the image is imported) is changed in the rendered
objects. Pods have no route off the machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from platformgen.builders.spark_application import WORK_DIR, work_claim

import support
from .controllers import SPARK_OPERATOR, Controllers, running_spark_operator
from .kube import CONTROL_PLANE, NODE_TOOLS, ROOT, Cluster, Manifest, apply
from .node import host_path_volume
from .test_controllers import render

pytestmark = pytest.mark.tools

NAMESPACE, NAME = "ml-pipelines", "preprocess-spark"
IMAGE_FOLDER = "components/preprocess"
RUN_AS = 10001  # defaults.runAsUser: the pods' user, owner of the volume's files
API_CIDR = "cidr: 192.0.2.0/28"
DATASETS, REGISTRY, OUTPUT = "data/datasets", "data/registry", "data/split"  # on the volume
REGISTRY_URI, OUTPUT_URI = "s3://mlp-models/registry", "s3://mlp-models/preprocessed/digits"
SPARK_ROLE = "spark-role"
FINISHED_ON_EXECUTOR = re.compile(r"Finished task \S+ in stage \S+ .* \(executor (\d+)\)")


def spec_copy(api_ip: str) -> Callable[[str], str]:
    """The registry and the output on the work volume; the API server's address is this
    cluster's (an IP block: what NetworkPolicies see after the `kubernetes` Service's DNAT)."""

    def edit(spec: str) -> str:
        args = f"--dataset-from-registry={REGISTRY_URI}, --model=digits, --version=latest, "
        args += f"--output={OUTPUT_URI}, --engine=spark]"
        assert args in spec, "preprocess-spark's args changed: update this test's spec copy"
        assert API_CIDR in spec, "the kubernetesApi endpoint changed: update this test"
        local = args.replace(REGISTRY_URI, f"{WORK_DIR}/{REGISTRY}")
        local = local.replace(OUTPUT_URI, f"{WORK_DIR}/{OUTPUT}")
        return spec.replace(args, local).replace(API_CIDR, f"cidr: {api_ip}/32")

    return edit


def registered_wine(volume: Path) -> Path:
    """The wine data with missing values (filled with the training means) as the pipeline's
    ingest snapshots it, and a registry on ``volume`` whose one version (of the model the spec
    names) records that snapshot at its path in the pods, as the register step does. Returns the
    snapshot's folder on this machine."""
    import numpy as np
    from mlp_common.dataset import write_snapshot
    from mlp_common.registry import ModelRegistry
    from mlp_ingest.core import load_sklearn

    frame = load_sklearn("wine")[0]
    frame.loc[frame.index % 11 == 0, "alcohol"] = np.nan
    info = write_snapshot(str(volume / DATASETS), frame, name="wine", target="target")
    assert info.uri is not None
    in_pods = WORK_DIR + info.uri.removeprefix(str(volume))
    model = volume / "model"
    model.mkdir()
    (model / "model.keras").write_bytes(b"not a model: preprocess reads only the metadata")
    recorded = {"snapshot_uri": in_pods, "files": info.files, "content_hash": info.content_hash}
    ModelRegistry(volume / REGISTRY).register("digits", model, {"dataset": recorded})
    return Path(info.uri)


def preprocess_image() -> dict[str, Any]:
    """The preprocess image's record (scripts/images.py), built from its generated Dockerfile
    or found in the image cache."""
    if os.geteuid() != 0:
        pytest.fail("building images needs root (buildah --isolation chroot, mmdebstrap)")
    script = ROOT / "scripts" / "build-images.sh"
    result = subprocess.run([str(script), IMAGE_FOLDER], capture_output=True, text=True)
    assert result.returncode == 0, f"scripts/build-images.sh failed:\n{result.stderr[-4000:]}"
    (record,) = support.load_script("images").build_all(ROOT / "platform.yaml", [IMAGE_FOLDER])
    assert record.cached, "the image was built just above"
    return dict(record.__dict__)


def ours(documents: list[Manifest]) -> list[Manifest]:
    """The namespace and everything in it the application needs: its quota and limits, every
    NetworkPolicy of the namespace, and the component's objects (ServiceAccount, driver Role
    and RoleBinding, work claim, SparkApplication)."""
    out = []
    for d in documents:
        meta = d["metadata"]
        if d["kind"] == "Namespace":
            if meta["name"] == NAMESPACE:
                out.append(d)
        elif meta.get("namespace") != NAMESPACE:
            continue
        elif d["kind"] in {"ResourceQuota", "LimitRange", "NetworkPolicy"}:
            out.append(d)
        elif meta.get("labels", {}).get("app.kubernetes.io/name") == NAME:
            out.append(d)
    return out


def dump(documents: list[Manifest]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False)


@pytest.fixture(scope="module")
def operator(
    node_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Controllers]:
    support.require_tools(
        *CONTROL_PLANE,
        *NODE_TOOLS,
        "kustomize",
        SPARK_OPERATOR,
        install="make tools cluster-tools node-tools controllers-tools",
    )
    with running_spark_operator(node_cluster, tmp_path_factory.mktemp("spark-node")) as ctl:
        yield ctl


def logs(cluster: Cluster, pod: str) -> str:
    result = cluster.kubectl("logs", "-n", NAMESPACE, pod, check=False)
    return str(result.stdout) + str(result.stderr)


def read_split(folder: Path, name: str) -> pd.DataFrame:
    frame = pd.read_parquet(folder / f"{name}.parquet")
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_spark_application_completes_on_the_node_with_the_local_split(
    node_cluster: Cluster, operator: Controllers, tmp_path: Path
) -> None:
    from mlp_common.files import read_json
    from mlp_preprocess.cli import main as preprocess

    cluster = node_cluster
    node = cluster.node
    assert node is not None
    documents = ours(render(tmp_path / "repo", spec_copy(node.host_ip)))
    (app,) = [d for d in documents if d["kind"] == "SparkApplication"]
    (claim,) = [d for d in documents if d["kind"] == "PersistentVolumeClaim"]
    assert claim["metadata"]["name"] == work_claim(NAME)
    policies = {d["metadata"]["name"] for d in documents if d["kind"] == "NetworkPolicy"}
    assert {NAME, f"{NAME}-spark", f"{NAME}-driver"} <= policies
    assert app["spec"]["imagePullPolicy"] == "Always"
    app["spec"]["imagePullPolicy"] = "IfNotPresent"  # imported below, no registry to pull from
    image = app["spec"]["image"]

    # The image, from its generated Dockerfile, into the node's containerd.
    started = time.monotonic()
    record = preprocess_image()
    build_seconds = time.monotonic() - started
    started = time.monotonic()
    first_reference = record["references"][0]
    if not node.has_images([first_reference], record["digest"]):
        node.import_image(Path(record["archive"]), first_reference)
    if image not in node.images():
        assert image in record["references"], (image, record)
        node.ctr("images", "tag", first_reference, image)
    import_seconds = time.monotonic() - started

    # The work volume: the snapshot and the registry, owned by the pods' user.
    volume = tmp_path / "volume"
    snapshot = registered_wine(volume)
    for path in [volume, *volume.rglob("*")]:
        os.chown(path, RUN_AS, RUN_AS)
    volume.chmod(0o775)
    pv = host_path_volume(claim, volume)
    secret = {  # secretEnv's references (no object store is reached here)
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "mlpipeline-minio-artifact", "namespace": NAMESPACE},
        "stringData": {"accesskey": "unused", "secretkey": "unused"},
    }
    executors: dict[str, dict[str, Any]] = {}
    try:
        prerequisites = [d for d in documents if d["kind"] != "SparkApplication"]
        apply(cluster, dump([*prerequisites, secret, pv]), applyset=None)
        started = time.monotonic()
        apply(cluster, dump([app]), applyset=None)

        def state() -> dict[str, Any]:
            status = cluster.get_json("sparkapplication", "-n", NAMESPACE, NAME).get("status", {})
            return dict(status)

        def completed() -> str | None:
            pods = cluster.get_json("pods", "-n", NAMESPACE, "-l", f"{SPARK_ROLE}=executor")
            for pod in pods["items"]:  # executors are deleted when the application ends
                (container,) = pod["spec"]["containers"]
                seen = executors.setdefault(pod["metadata"]["name"], {"phases": set()})
                seen["image"] = container["image"]
                seen["phases"].add(pod["status"].get("phase"))
            found = state().get("applicationState", {})
            if found.get("state") in {"FAILED", "SUBMISSION_FAILED"}:
                raise AssertionError(f"the application failed: {found}")
            return None if found.get("state") == "COMPLETED" else f"state {found or 'none'}"

        try:
            cluster.wait_for(f"{NAME} COMPLETED", completed, 600)
        except AssertionError as error:
            driver_log = logs(cluster, f"{NAME}-driver")[-6000:]
            raise AssertionError(
                f"{error}\nexecutors seen: {executors}\ndriver:\n{driver_log}\n"
                f"{operator.logs(SPARK_OPERATOR, 40)}"
            ) from None
        complete_seconds = time.monotonic() - started

        # The driver and the executors ran our image; tasks finished on an executor.
        status = state()
        driver = cluster.get_json("pod", "-n", NAMESPACE, status["driverInfo"]["podName"])
        assert driver["status"]["phase"] == "Succeeded", driver["status"]
        (container,) = driver["spec"]["containers"]
        assert container["image"] == image
        assert executors, "no executor pod was seen"
        assert {e["image"] for e in executors.values()} == {image}, executors
        assert any("Running" in e["phases"] for e in executors.values()), executors
        driver_log = logs(cluster, driver["metadata"]["name"])
        on_executors = set(FINISHED_ON_EXECUTOR.findall(driver_log))
        assert on_executors, f"no task finished on an executor:\n{driver_log[-4000:]}"

        # The split equals the local run's (the streaming engine) on the same data.
        local = tmp_path / "local"
        assert preprocess(["--dataset", str(snapshot), "--output", str(local)]) == 0
        remote = volume / OUTPUT
        for name in ("train", "val", "test"):
            pd.testing.assert_frame_equal(
                read_split(remote, name), read_split(local, name), check_exact=False, rtol=1e-12
            )
        described = {
            k: read_json(f / "features.json") for k, f in (("node", remote), ("local", local))
        }
        for key in ("mean", "variance"):
            assert described["node"].pop(key) == pytest.approx(
                described["local"].pop(key), rel=1e-9
            )
        assert described["node"] == described["local"]
        print(
            f"\nSparkApplication: image build/cache {build_seconds:.0f} s, import "
            f"{import_seconds:.0f} s, COMPLETED after {complete_seconds:.0f} s, "
            f"{len(executors)} executor pod(s), tasks on executor(s) {sorted(on_executors)}, "
            f"splits {described['node']['splits']}"
        )
    finally:
        cluster.kubectl(
            "delete", "sparkapplication", "-n", NAMESPACE, NAME, "--ignore-not-found",
            "--wait=true", "--timeout=120s", check=False,
        )  # fmt: skip
        cluster.kubectl(
            "delete", "namespace", NAMESPACE, "--ignore-not-found", "--timeout=180s", check=False
        )
        cluster.kubectl(
            "delete", "pv", pv["metadata"]["name"], "--ignore-not-found", "--timeout=60s",
            check=False,
        )  # fmt: skip
