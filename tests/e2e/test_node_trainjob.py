"""The rendered TrainingRuntime + TrainJob trained to completion on the real node, by the real
Kubeflow Trainer v2.3 and JobSet v0.12 controllers (tests/e2e/controllers.py), with the train
image built from its generated Dockerfile (scripts/build-images.sh) imported into the node's
containerd.

From a spec copy (test_controllers.render) in which the TrainJob reads the digits data from its
work volume instead of the registry (no object store here), trains for more epochs, and asks for
half a CPU per worker (the node has two cores for both workers and CoreDNS):

- a hostPath PersistentVolume (the node has no provisioner) pre-bound to the rendered claim
  `train-distributed-work`, pre-filled with the digits data preprocessed by the repo's own
  preprocess step, owned by the pods' user;
- the namespace's rendered NetworkPolicies applied (default deny, DNS, the workers' port 2222 among
  themselves): the two workers' collectives cross them with real packets, and an unlabelled pod of
  the same namespace is refused on that port;
- one worker pod deleted after the first backed-up epoch: JobSet's failure policy restarts the
  job, and the new workers resume from the BackupAndRestore checkpoint on the volume (the model's
  metrics record the epoch the last attempt started at);
- the TrainJob Complete (Trainer's status) and its JobSet Completed (JobSet's), the model under
  `<volume>/<JobSet UID>/model`, loaded here and predicting the test split, trained on the data
  the run pinned in `<volume>/<JobSet UID>/data.json` (mlp_train.run_data) before the restart.

Everything under Pod Security `restricted`; the node has no route off the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import support
from .controllers import BINARIES, Controllers, running_controllers
from .kube import CONTROL_PLANE, NODE_TOOLS, ROOT, Cluster, Manifest, apply
from .node import host_path_volume, probe_pod
from .test_controllers import component, render

pytestmark = pytest.mark.tools

NAMESPACE, NAME = "ml-pipelines", "train-distributed"
IMAGE_FOLDER = "components/train"
WORK_DIR = "/var/lib/mlp-train"  # where the runtime mounts the claim (builders/train_job.py)
PORT = 2222
EPOCHS = 40  # an epoch takes a fraction of a second: 39 left to interrupt after the first backup
TRAIN_UID = 10001  # the runtime's runAsUser / fsGroup (builders/train_job.py)
MIN_ACCURACY = 0.9
SELECTOR = ("app.kubernetes.io/name", "app.kubernetes.io/part-of")  # the policy's podSelector


def spec_copy(spec: str) -> str:
    """Data from the work volume, more epochs (time to interrupt one), smaller CPU requests."""
    args = (
        "args: [--data-from-registry=s3://mlp-models/registry, --model=digits, "
        "--version=latest, --epochs=30, --seed=42]"
    )
    assert args in spec, "the TrainJob's args changed: update this test's spec copy"
    spec = spec.replace(
        args,
        f"args: [--data={WORK_DIR}/data, --epochs={EPOCHS}, --patience={EPOCHS}, --seed=42]",
    )
    head, _, tail = spec.partition(f"  {NAME}:\n")
    requests = 'requests: {cpu: "1", memory: 1Gi}'
    assert requests in tail.split("\n\n", 1)[0], "the TrainJob's requests changed"
    return head + f"  {NAME}:\n" + tail.replace(requests, "requests: {cpu: 500m, memory: 1Gi}", 1)


def preprocessed_digits(folder: Path) -> Path:
    """The digits data through the repo's own ingest and preprocess code."""
    from mlp_common.dataset import write_dataset
    from mlp_ingest.core import load_sklearn
    from mlp_preprocess.cli import main as preprocess

    frame, target = load_sklearn("digits")
    write_dataset(folder / "ds", frame, name="digits", target=target, source="sklearn:digits")
    assert preprocess(["--dataset", str(folder / "ds"), "--output", str(folder / "prep")]) == 0
    return folder / "prep"


def train_image() -> dict[str, Any]:
    """The train image's record (scripts/images.py), built from its generated Dockerfile or
    found in the image cache."""
    if os.geteuid() != 0:
        pytest.fail("building images needs root (buildah --isolation chroot, mmdebstrap)")
    script = ROOT / "scripts" / "build-images.sh"
    result = subprocess.run([str(script), IMAGE_FOLDER], capture_output=True, text=True)
    assert result.returncode == 0, f"scripts/build-images.sh failed:\n{result.stderr[-4000:]}"
    images = support.load_script("images")
    (record,) = images.build_all(ROOT / "platform.yaml", [IMAGE_FOLDER])
    assert record.cached, "the image was built just above"
    return dict(record.__dict__)


def local_image(runtime: Manifest) -> None:
    """No registry is reachable: the kubelet uses the image imported into containerd. The only
    field of the rendered objects this test changes (the platform pulls `Always`)."""
    jobs = runtime["spec"]["template"]["spec"]["replicatedJobs"]
    for job in jobs:
        for container in job["template"]["spec"]["template"]["spec"]["containers"]:
            assert container["imagePullPolicy"] == "Always"
            container["imagePullPolicy"] = "IfNotPresent"


def dump(documents: list[Manifest]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False)


@pytest.fixture(scope="module")
def trainer(
    node_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Controllers]:
    support.require_tools(
        *CONTROL_PLANE,
        *NODE_TOOLS,
        "kustomize",
        *BINARIES,
        install="make tools cluster-tools node-tools controllers-tools",
    )
    with running_controllers(node_cluster, tmp_path_factory.mktemp("trainjob-ctl")) as ctl:
        yield ctl


def condition(obj: Manifest, kind: str) -> dict[str, Any] | None:
    for c in obj.get("status", {}).get("conditions", []):
        if c.get("type") == kind and c.get("status") == "True":
            return dict(c)
    return None


def pod_logs(cluster: Cluster, pod: str) -> str:
    result = cluster.kubectl("logs", "-n", NAMESPACE, pod, check=False)
    return str(result.stdout) + str(result.stderr)


def test_train_job_trains_on_the_node_and_resumes_after_a_restart(
    node_cluster: Cluster, trainer: Controllers, tmp_path: Path
) -> None:
    cluster = node_cluster
    assert cluster.node is not None
    documents = render(tmp_path / "repo", spec_copy)
    objects = component(documents, NAME, {"TrainingRuntime", "TrainJob", "PersistentVolumeClaim"})
    objects = [o for o in objects if o["metadata"].get("namespace", NAMESPACE) == NAMESPACE]
    objects = [o for o in objects if o["kind"] != "Namespace" or o["metadata"]["name"] == NAMESPACE]
    policies = [
        d
        for d in documents
        if d["kind"] == "NetworkPolicy" and d["metadata"]["namespace"] == NAMESPACE
    ]
    (runtime,) = [o for o in objects if o["kind"] == "TrainingRuntime"]
    (job,) = [o for o in objects if o["kind"] == "TrainJob"]
    (claim,) = [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    local_image(runtime)
    (container,) = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"][
        "template"
    ]["spec"]["containers"]

    # The image, from its generated Dockerfile, into the node's containerd.
    record = train_image()
    started = time.monotonic()
    # The archive names the image by its first reference; the environment's tag is another.
    first_reference = record["references"][0]
    if not cluster.node.has_images([first_reference], record["digest"]):
        cluster.node.import_image(Path(record["archive"]), first_reference)
    if container["image"] not in cluster.node.images():
        assert container["image"] in record["references"], (container["image"], record)
        cluster.node.ctr("images", "tag", first_reference, container["image"])
    import_seconds = time.monotonic() - started

    # The work volume: the preprocessed digits, owned by the pods' user.
    volume = tmp_path / "volume"
    volume.mkdir()
    data = preprocessed_digits(tmp_path / "digits")
    shutil.copytree(data, volume / "data")
    for path in [volume, *volume.rglob("*")]:
        os.chown(path, TRAIN_UID, TRAIN_UID)
    volume.chmod(0o775)

    pv = host_path_volume(claim, volume)
    try:
        # The TrainJob only after its runtime (Trainer's webhook refuses it otherwise).
        prerequisites = [o for o in objects if o["kind"] not in {"TrainJob", "TrainingRuntime"}]
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "mlpipeline-minio-artifact", "namespace": NAMESPACE},
            "stringData": {"accesskey": "unused", "secretkey": "unused"},
        }
        apply(cluster, dump([*prerequisites, *policies, secret, pv]), applyset=None)
        apply(cluster, dump([runtime]), applyset=None)
        started = time.monotonic()
        apply(cluster, dump([job]), applyset=None)

        def bound() -> str | None:
            phase = cluster.get_json("pvc", "-n", NAMESPACE, claim["metadata"]["name"])
            return None if phase["status"].get("phase") == "Bound" else str(phase["status"])

        cluster.wait_for("the claim bound to the hostPath volume", bound, 60)

        def jobset_uid() -> str | None:
            result = cluster.kubectl(
                "get", "jobset", "-n", NAMESPACE, NAME, "-o", "json", check=False
            )
            return None if result.returncode == 0 else result.stderr.strip()

        cluster.wait_for("Trainer's JobSet", jobset_uid, 60)
        uid = cluster.get_json("jobset", "-n", NAMESPACE, NAME)["metadata"]["uid"]
        run = volume / uid
        workers = [f"{NAME}-node-0-0", f"{NAME}-node-0-1"]

        def worker_pods() -> dict[str, Manifest]:
            items = cluster.get_json(
                "pods", "-n", NAMESPACE, "-l", f"jobset.sigs.k8s.io/jobset-name={NAME}"
            )
            return {p["spec"]["hostname"]: p for p in items["items"]}

        def running() -> str | None:
            pods = worker_pods()
            if sorted(pods) != workers:
                return f"pods {sorted(pods)}"
            phases = {n: p["status"].get("phase") for n, p in pods.items()}
            for name, pod in pods.items():
                for status in pod["status"].get("containerStatuses", []):
                    waiting = status.get("state", {}).get("waiting", {})
                    if waiting.get("reason") in {
                        "ErrImagePull",
                        "ImagePullBackOff",
                        "CreateContainerConfigError",
                    }:
                        raise AssertionError(f"{name}: {waiting}")
            return None if set(phases.values()) == {"Running"} else str(phases)

        cluster.wait_for("2 worker pods running", running, 180)
        first = {n: p["metadata"]["uid"] for n, p in worker_pods().items()}

        # The policies are enforced with real packets: a pod with the workers' labels reaches
        # the chief's port (tried until its gRPC server listens), an unlabelled pod of the same
        # namespace then does not.
        ips = {n: p["status"]["podIP"] for n, p in worker_pods().items()}
        connect = f"nc -w 3 {ips[workers[0]]} {PORT} -e /bin/true"
        labels = {k: runtime["metadata"]["labels"][k] for k in SELECTOR}
        results = {}
        for probe, probe_labels, tries in (("peer", labels, 60), ("stranger", {}, 3)):
            script = (
                f"for i in $(seq {tries}); do if {connect} 2>/dev/null; then echo reached; "
                "exec sleep 3600; fi; sleep 1; done; echo refused; exec sleep 3600"
            )
            name = f"trainjob-{probe}"
            apply(
                cluster,
                dump([probe_pod(name, NAMESPACE, script, labels=probe_labels)]),
                applyset=None,
            )

            def answered(name: str = name) -> str | None:
                out = cluster.kubectl("logs", "-n", NAMESPACE, name, check=False).stdout
                return None if out.strip() else "no answer yet"

            cluster.wait_for(f"{name}'s connection to the chief", answered, 180)
            results[probe] = cluster.kubectl("logs", "-n", NAMESPACE, name).stdout.strip()
            cluster.kubectl("delete", "pod", "-n", NAMESPACE, name, "--wait=false")
        assert results == {"peer": "reached", "stranger": "refused"}, results

        # Interrupt training once an epoch is backed up on the volume.
        def backed_up() -> str | None:
            for name, pod in worker_pods().items():
                if pod["status"].get("phase") in {"Failed", "Succeeded"}:
                    raise AssertionError(
                        f"{name} ended before the first backup:\n{pod_logs(cluster, name)[-3000:]}"
                    )
            found = list((run / "backup").rglob("checkpoint")) if (run / "backup").exists() else []
            return None if found else f"no checkpoint under {run / 'backup'}"

        cluster.wait_for("the first backed-up epoch", backed_up, 600)
        interrupted = time.monotonic() - started
        # A worker crashes: its process is killed at once. (A deletion stops it gracefully:
        # Python as PID 1 ignores SIGTERM, so it trained on for the 30 s grace period, finished
        # every epoch, and the chief removed the backup before the restart could resume.)
        victim = worker_pods()[workers[1]]  # <job>-<index>-<random>
        (status,) = victim["status"]["containerStatuses"]
        cluster.node.ctr(
            "tasks", "kill", "--signal", "SIGKILL", status["containerID"].split("://", 1)[1]
        )

        def done() -> str | None:
            trainjob = cluster.get_json("trainjob", "-n", NAMESPACE, NAME)
            if condition(trainjob, "Failed"):
                raise AssertionError(f"TrainJob failed: {trainjob['status']}")
            if condition(trainjob, "Complete"):
                return None
            return str([c.get("type") for c in trainjob.get("status", {}).get("conditions", [])])

        try:
            cluster.wait_for("the TrainJob Complete", done, 1200)
        except AssertionError:
            logs = {n: pod_logs(cluster, n)[-3000:] for n in worker_pods()}
            raise AssertionError(
                f"{logs}\n{trainer.logs('trainer-controller-manager')}\n{trainer.logs('jobset-manager')}"
            ) from None
        complete_seconds = time.monotonic() - started

        jobset = cluster.get_json("jobset", "-n", NAMESPACE, NAME)
        assert condition(jobset, "Completed"), jobset["status"]
        restarts = jobset["status"].get("restarts", 0)
        assert restarts >= 1, jobset["status"]
        second = {n: p["metadata"]["uid"] for n, p in worker_pods().items()}
        assert not set(second.values()) & set(first.values()), "the workers were not restarted"

        # The model on the volume, from the last attempt, which resumed from the backup.
        model = run / "model"
        metrics = json.loads((model / "metrics.json").read_text())
        distribution = metrics["distribution"]
        assert distribution["workers"] == 2
        assert distribution["initial_epoch"] >= 1, distribution  # resumed, not restarted
        assert not (run / "backup").exists() or not any((run / "backup").iterdir())
        # The first worker pinned the run's data on the volume; the restarted workers trained on
        # it (checked against its hashes), and the model records the same data.
        pin = json.loads((run / "data.json").read_text())
        assert pin["request"] == {"data": f"{WORK_DIR}/data"}, pin
        recorded = json.loads((model / "data.json").read_text())
        assert recorded == {"uri": pin["uri"], "files": pin["files"]}, (recorded, pin)
        accuracy = predict(model, data)
        print(
            f"\nTrainJob: image import {import_seconds:.0f} s, first backup after "
            f"{interrupted:.0f} s, Complete after {complete_seconds:.0f} s, {restarts} restart(s), "
            f"resumed at epoch {distribution['initial_epoch']}, {metrics.get('epochs_run')} "
            f"epochs, val_accuracy {metrics['val_accuracy']:.4f}, test accuracy {accuracy:.4f}"
        )
        assert accuracy >= MIN_ACCURACY
    finally:
        cluster.kubectl(
            "delete",
            "trainjob",
            "-n",
            NAMESPACE,
            NAME,
            "--ignore-not-found",
            "--wait=true",
            "--timeout=120s",
            check=False,
        )
        cluster.kubectl(
            "delete", "namespace", NAMESPACE, "--ignore-not-found", "--timeout=180s", check=False
        )
        cluster.kubectl(
            "delete",
            "pv",
            pv["metadata"]["name"],
            "--ignore-not-found",
            "--timeout=60s",
            check=False,
        )


def predict(model: Path, data: Path) -> float:
    """Load the model the chief wrote and score the test split (same code as evaluate reads)."""
    import keras
    from mlp_common.files import read_json
    from mlp_train.core import load_split

    features = read_json(model / "features.json")["features"]
    x, y = load_split(data, "test", features)
    loaded = keras.models.load_model(model / "model.keras")
    predicted = loaded.predict(x, verbose=0).argmax(axis=1)
    return float((predicted == y).mean())
