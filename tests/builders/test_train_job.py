"""TrainJob + TensorFlow TrainingRuntime (builders.train_job) and its contract with the image's
entrypoint (components/train mlp_train.jobset)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from mlp_train.distributed import cluster_from_environment
from mlp_train.jobset import REQUIRED, run_options, tf_config_from_jobset

from platformgen.builders import build_platform
from platformgen.builders.train_job import JOBSET_LABELS, RUN_ID, WORK_DIR
from platformgen.naming import Manifest
from platformgen.spec.distributed import worker_host_name
from platformgen.spec.load import load_spec

from support import ROOT, SPECS, require_tools, tool


def rendered(path: str, env: str | None, name: str) -> dict[str, Manifest]:
    spec = load_spec(SPECS / path)
    return {m["kind"]: m for m in build_platform(spec, env)[name] if m["kind"] != "ConfigMap"}


def node(runtime: Manifest) -> dict[str, Any]:
    job = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]
    assert job["name"] == "node"
    assert job["template"]["metadata"]["labels"] == {
        "trainer.kubeflow.org/trainjob-ancestor-step": "trainer"
    }
    pod: dict[str, Any] = job["template"]["spec"]["template"]
    return pod


def test_runtime_and_train_job_from_the_spec() -> None:
    objects = rendered("full.yaml", None, "trainer")
    runtime, train_job = objects["TrainingRuntime"], objects["TrainJob"]
    assert runtime["apiVersion"] == train_job["apiVersion"] == "trainer.kubeflow.org/v1alpha1"
    assert runtime["metadata"]["labels"]["trainer.kubeflow.org/framework"] == "tensorflow"
    assert runtime["spec"]["mlPolicy"] == {"numNodes": 3}  # distributed.workers, written once
    assert "trainer" not in train_job["spec"]  # no second worker count to disagree with
    assert runtime["spec"]["template"]["spec"]["failurePolicy"] == {"maxRestarts": 4}
    assert train_job["spec"]["runtimeRef"] == {
        "apiGroup": "trainer.kubeflow.org",
        "kind": "TrainingRuntime",
        "name": "trainer",
    }
    pod = node(runtime)
    (container,) = pod["spec"]["containers"]
    assert container["name"] == "node"
    assert container["ports"] == [{"containerPort": 2345, "name": "workers", "protocol": "TCP"}]
    assert container["resources"]["requests"]["cpu"] == "2"
    assert container["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "trainer"


def test_prod_runs_the_image_by_digest() -> None:
    require_tools("kustomize")
    digest = "sha256:" + "b" * 64
    # The golden tree of the full fixture (test_golden keeps it equal to a fresh render).
    build = subprocess.run(
        [str(tool("kustomize")), "build", str(ROOT / "tests/golden/full/overlays/prod")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    images = [line.strip() for line in build.splitlines() if "full/train-python" in line]
    assert images == [f"image: registry.example.com/full/train-python@{digest}"]


def test_network_policy_opens_exactly_the_worker_port_between_workers() -> None:
    policy = rendered("full.yaml", None, "trainer")["NetworkPolicy"]
    me = {"app.kubernetes.io/name": "trainer", "app.kubernetes.io/part-of": "full-platform"}
    peer = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "pipelines"}},
        "podSelector": {"matchLabels": me},
    }
    worker_port = [{"port": 2345, "protocol": "TCP"}]
    assert policy["spec"]["podSelector"] == {"matchLabels": me}
    assert policy["spec"]["ingress"] == [{"from": [peer], "ports": worker_port}]
    to_workers = [r for r in policy["spec"]["egress"] if r["to"] == [peer]]
    assert to_workers == [{"ports": worker_port, "to": [peer]}]
    # Every other egress rule is a declared dependency (cloud-s3), none to the workers.
    assert len(policy["spec"]["egress"]) == 2


def test_tf_config_from_the_pods_jobset_labels_names_every_worker() -> None:
    """What the runtime passes (downward API + MLP_*) is exactly what the entrypoint needs,
    and the addresses are JobSet's stable host names."""
    pod = node(rendered("full.yaml", None, "trainer")["TrainingRuntime"])
    env = pod["spec"]["containers"][0]["env"]
    from_labels = {
        e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in env if "valueFrom" in e
    }
    labels = {**JOBSET_LABELS, RUN_ID[0]: RUN_ID[1]}
    assert from_labels == {k: f"metadata.labels['{v}']" for k, v in labels.items()}
    values = {e["name"]: e["value"] for e in env if "value" in e}
    # JOB_COMPLETION_INDEX comes from the Job controller (Indexed Job), everything else from us.
    assert set(REQUIRED) - {"JOB_COMPLETION_INDEX"} == (set(from_labels) - {RUN_ID[0]}) | (
        set(values) & set(REQUIRED)
    )
    # Pod 2 of TrainJob "trainer" (JobSet "trainer", Job "trainer-node-0"):
    labels = {"JOBSET_NAME": "trainer", "REPLICATED_JOB_NAME": "node", "JOB_INDEX": "0"}
    pod_env = {**values, **labels, "JOB_COMPLETION_INDEX": "2"}
    config = json.loads(tf_config_from_jobset(pod_env))
    hosts = [f"{worker_host_name('trainer', i)}.trainer:2345" for i in range(3)]
    assert config == {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": 2}}
    cluster = cluster_from_environment({"TF_CONFIG": json.dumps(config)})
    assert cluster is not None and cluster.workers == 3 and not cluster.is_chief


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"JOB_COMPLETION_INDEX": None}, "JOB_COMPLETION_INDEX not set"),
        ({"JOB_COMPLETION_INDEX": "3"}, "JOB_COMPLETION_INDEX=3: not a worker of 3"),
        ({"MLP_WORKER_PORT": "x"}, "MLP_WORKER_PORT='x': not an integer"),
    ],
)
def test_entrypoint_refuses_a_pod_outside_a_jobset(
    change: dict[str, str | None], message: str
) -> None:
    from mlp_common.step import StepError

    base = {
        "JOBSET_NAME": "t",
        "REPLICATED_JOB_NAME": "node",
        "JOB_INDEX": "0",
        "JOB_COMPLETION_INDEX": "0",
        "MLP_NUM_WORKERS": "3",
        "MLP_WORKER_PORT": "2222",
    }
    environ = {k: v for k, v in (base | change).items() if v is not None}
    with pytest.raises(StepError, match=message):
        tf_config_from_jobset(environ)


def test_model_and_backup_live_on_the_work_volume_per_run() -> None:
    """The chief's model, the BackupAndRestore checkpoints and the run's data pin go to the
    TrainJob's claim, in a folder of the JobSet's UID: durable across pod and JobSet restarts,
    nothing in emptyDir."""
    objects = rendered("full.yaml", None, "trainer")
    claim = objects["PersistentVolumeClaim"]
    assert claim["metadata"]["name"] == "trainer-work"
    assert claim["spec"] == {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": "2Gi"}},
    }
    pod = node(objects["TrainingRuntime"])
    (container,) = pod["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    (work,) = [name for name, path in mounts.items() if path == WORK_DIR]
    assert volumes[work]["persistentVolumeClaim"] == {"claimName": "trainer-work"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    options = run_options(env | {"MLP_RUN_ID": "uid-1"}, container["args"])
    assert options == [
        f"--output={WORK_DIR}/uid-1/model",
        f"--backup-dir={WORK_DIR}/uid-1/backup",
        f"--data-pin={WORK_DIR}/uid-1/data.json",  # the run's data, pinned by its first worker
    ]
    set_here = ("--output", "--backup-dir", "--data-pin")
    assert not any(a.startswith(set_here) for a in container["args"])


@pytest.mark.parametrize(
    ("environ", "argv", "message"),
    [
        ({"MLP_WORK_DIR": "/w"}, [], "MLP_RUN_ID not set"),
        ({"MLP_WORK_DIR": "/w", "MLP_RUN_ID": "u"}, ["--output=/tmp/m"], "--output is set by"),
        ({"MLP_WORK_DIR": "/w", "MLP_RUN_ID": "u"}, ["--backup-dir", "/b"], "--backup-dir is"),
        ({"MLP_WORK_DIR": "/w", "MLP_RUN_ID": "u"}, ["--data-pin=/p"], "--data-pin is set by"),
    ],
)
def test_entrypoint_refuses_run_options_it_sets(
    environ: dict[str, str], argv: list[str], message: str
) -> None:
    from mlp_common.step import StepError

    with pytest.raises(StepError, match=message):
        run_options(environ, argv)
