"""Distributed training on Kubeflow Trainer v2.3 (trainer.kubeflow.org/v1alpha1, on JobSet).

A component of kind TrainJob renders three objects:

- a `TrainingRuntime` for TensorFlow. Trainer ships runtimes for PyTorch, JAX, XGBoost and MPI,
  none for TensorFlow, so this is ours: a JobSet template with one replicated job `node`
  (Trainer's ancestor step `trainer`) whose `mlPolicy.numNodes` is `distributed.workers`, and a
  pod template with the component's image, command, resources and the restricted security
  context. Any pod failure fails its Job, and the JobSet restarts all workers
  (`failurePolicy.maxRestarts` = `backoffLimit`), which is what MultiWorkerMirroredStrategy
  needs: its all-reduce cannot continue without every worker, and the restarted workers resume
  from their BackupAndRestore checkpoint.
- a `TrainJob` that runs the component on that runtime (`runtimeRef`); the worker count is the
  runtime's, written once.
- a `PersistentVolumeClaim` `<name>-work` (ReadWriteMany, `distributed.storage`) that every
  worker mounts at `/var/lib/mlp-train` (`MLP_WORK_DIR`). The entrypoint writes the chief's model
  and the BackupAndRestore checkpoints under `<MLP_WORK_DIR>/<MLP_RUN_ID>/`, where the run id is
  the JobSet's UID (its pod label `jobset.sigs.k8s.io/jobset-uid`): the same for every worker and
  across the JobSet's restarts, so a restarted run resumes from its last epoch instead of
  starting over, and new for a new TrainJob. Nothing of a run lives in the pods' emptyDir.
  The run's data is pinned there too (`<MLP_WORK_DIR>/<MLP_RUN_ID>/data.json`): the first worker
  to start records the preprocess output it resolved (the one its `--data` names, or the one the
  registry version of `--data-from-registry` recorded) with each file's sha256, and every other
  worker and every restart trains on that data, checked against the hashes, so a version
  registered mid-run never reaches it and a resume refuses data that changed under it
  (components/train mlp_train.run_data).

The component's NetworkPolicy (builders.network_policy) gets one more ingress and egress rule
from `worker_rule`: worker pods reach each other on `distributed.port`, and nothing else.

TF_CONFIG is built in the pod, by the image's entrypoint (`python -m mlp_train.jobset`), from
what JobSet gives each pod: JobSet names the pods' Job `<jobset>-node-<job index>` and makes it
an Indexed Job in the subdomain `<jobset>` (a headless Service), so pod `i` has the stable host
name `<jobset>-node-<job index>-<i>.<jobset>`. The pod reads its JobSet name, replicated job
name and job index from its JobSet labels (downward API, below), its own index from
`JOB_COMPLETION_INDEX` (set by the Job controller), and the worker count and port from
`MLP_NUM_WORKERS` and `MLP_WORKER_PORT`; pod 0 is the chief.
"""

from __future__ import annotations

from typing import Any

from platformgen.builders.pod import container, pod_labels, pod_spec, workload_metadata
from platformgen.naming import NAMESPACE_NAME, Manifest, metadata, selector_labels
from platformgen.quantity import canonical_bytes
from platformgen.resolve import ComponentView
from platformgen.spec.distributed import REPLICATED_JOB

API_VERSION = "trainer.kubeflow.org/v1alpha1"
ANCESTOR_LABEL = "trainer.kubeflow.org/trainjob-ancestor-step"
FRAMEWORK_LABEL = "trainer.kubeflow.org/framework"
FRAMEWORK = "tensorflow"
JOBSET_LABELS = {
    "JOBSET_NAME": "jobset.sigs.k8s.io/jobset-name",
    "REPLICATED_JOB_NAME": "jobset.sigs.k8s.io/replicatedjob-name",
    "JOB_INDEX": "jobset.sigs.k8s.io/job-index",
}
"""Environment variable -> the JobSet pod label it is read from (downward API)."""
RUN_ID = ("MLP_RUN_ID", "jobset.sigs.k8s.io/jobset-uid")
"""The run's id (environment variable, JobSet pod label): the JobSet's UID (module doc)."""
WORK_DIR = "/var/lib/mlp-train"
"""Where every worker mounts the work volume (`MLP_WORK_DIR`)."""
WORK_VOLUME = "mlp-train-work"
ACCESS_MODES = ["ReadWriteMany"]
"""Every worker, on any node, reads the chief's checkpoints when the run resumes."""


def work_claim(name: str) -> str:
    """The PersistentVolumeClaim of TrainJob `name`."""
    return f"{name}-work"


def _node_container(view: ComponentView) -> dict[str, Any]:
    d = view.component.distributed
    assert d is not None  # build_* return None otherwise
    node = container(view, name=REPLICATED_JOB)
    env = [
        *node["env"],
        {"name": "MLP_NUM_WORKERS", "value": str(d.workers)},
        {"name": "MLP_WORKER_PORT", "value": str(d.port)},
        {"name": "MLP_WORK_DIR", "value": WORK_DIR},
        *(
            {
                "name": variable,
                "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{label}']"}},
            }
            for variable, label in [*JOBSET_LABELS.items(), RUN_ID]
        ),
    ]
    node["env"] = sorted(env, key=lambda e: str(e["name"]))
    node["ports"] = [{"containerPort": d.port, "name": "workers", "protocol": "TCP"}]
    node["volumeMounts"] = [*node["volumeMounts"], {"mountPath": WORK_DIR, "name": WORK_VOLUME}]
    return node


JOBSET_OWNS_JOBS = (
    "kube-linter",
    "job-ttl-seconds-after-finished",
    "JobSet creates and deletes these Jobs with the TrainJob that owns them; a TTL would not apply",
)


def build_training_runtime(view: ComponentView) -> Manifest | None:
    c = view.component
    if c.kind != "TrainJob" or c.distributed is None:
        return None
    pod = pod_spec(view, restart_policy="Never")
    pod["containers"] = [_node_container(view)]
    pod["volumes"] = [
        *pod["volumes"],
        {"name": WORK_VOLUME, "persistentVolumeClaim": {"claimName": work_claim(view.name)}},
    ]
    # The runtime holds the pod template, so it carries the component's policy waivers (the
    # gates check the Job that JobSet makes from it, tests/security/test_derived_pods.py).
    meta = workload_metadata(view, extra_exceptions=[JOBSET_OWNS_JOBS])
    meta["labels"] = {**meta["labels"], FRAMEWORK_LABEL: FRAMEWORK}
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingRuntime",
        "metadata": meta,
        "spec": {
            "mlPolicy": {"numNodes": c.distributed.workers},
            "template": {
                "spec": {
                    "failurePolicy": {"maxRestarts": c.backoff_limit},
                    "network": {"enableDNSHostnames": True, "publishNotReadyAddresses": True},
                    "replicatedJobs": [
                        {
                            "name": REPLICATED_JOB,
                            "replicas": 1,
                            "template": {
                                "metadata": {"labels": {ANCESTOR_LABEL: "trainer"}},
                                "spec": {
                                    "backoffLimit": 0,
                                    "template": {
                                        "metadata": {"labels": pod_labels(view)},
                                        "spec": pod,
                                    },
                                },
                            },
                        }
                    ],
                }
            },
        },
    }


def build_work_volume(view: ComponentView) -> Manifest | None:
    c = view.component
    if c.kind != "TrainJob" or c.distributed is None:
        return None
    spec: dict[str, Any] = {
        "accessModes": ACCESS_MODES,
        "resources": {"requests": {"storage": canonical_bytes(str(c.distributed.storage))}},
    }
    if c.distributed.storage_class_name is not None:
        spec["storageClassName"] = c.distributed.storage_class_name
    meta = metadata(view.spec, view.name, c.role, view.namespace)  # the component's labels
    meta["name"] = work_claim(view.name)
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec}


def build_train_job(view: ComponentView) -> Manifest | None:
    c = view.component
    if c.kind != "TrainJob" or c.distributed is None:
        return None
    spec: dict[str, Any] = {
        "runtimeRef": {
            "apiGroup": "trainer.kubeflow.org",
            "kind": "TrainingRuntime",
            "name": view.name,
        },
    }
    if c.active_deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = c.active_deadline_seconds
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainJob",
        "metadata": workload_metadata(view),
        "spec": spec,
    }


def worker_rule(view: ComponentView, direction: str) -> dict[str, Any]:
    """The NetworkPolicy rule (`direction` "from": ingress, "to": egress) between the workers
    of a TrainJob: their pods, on `distributed.port`, nothing else."""
    d = view.component.distributed
    assert d is not None
    peer = {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME: view.namespace}},
        "podSelector": {"matchLabels": selector_labels(view.spec, view.name)},
    }
    return {direction: [peer], "ports": [{"port": d.port, "protocol": "TCP"}]}
