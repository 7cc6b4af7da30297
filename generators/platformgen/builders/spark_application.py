"""A PySpark job on the Spark Operator v2.5 (sparkoperator.k8s.io/v1beta2, kind SparkApplication).

A component of kind SparkApplication renders, besides its ServiceAccount:

- the `SparkApplication`: Python, cluster mode, the component's image running
  `spark.mainApplicationFile` with the component's `args`. The driver gets the component's
  resources, each executor `spark.executors.resources`; Spark's own fields say them the way
  Spark counts: `cores` (task slots) is the CPU request rounded up, `coreRequest`/`coreLimit` are
  the pod's CPU, `memory` (the JVM heap) is 60% of the memory request and `memoryOverhead` the
  rest (off-heap, and the Python workers, which run outside the JVM), so the pod asks for exactly
  the memory request. spark-submit makes a pod's memory limit its request (the operator's
  `memoryLimit` is applied by its webhook only), so spec.spark requires them equal. Dynamic
  allocation (with shuffle tracking, there is no external shuffle service) keeps the executors
  within `spark.executors.minExecutors..maxExecutors`; each executor's Spark local dir (shuffle,
  spill) is an emptyDir bounded by `spark.executors.localDirSize`.
  Everything else about the pods is in `driver.template` / `executor.template`, Spark's pod
  templates (Spark >= 3.0): the restricted security context, the emptyDirs behind the writable
  paths (the root filesystem is read-only), the env, and for the driver the component's
  resources whole (Spark sets the same cpu and memory, and keeps its ephemeral storage). With
  a template the Spark Operator does not ask its mutating webhook to patch the pods (it labels
  them `sparkoperator.k8s.io/mutated-by-spark-operator` only without one), so the pods are
  what spark-submit makes of these templates, with or without the webhook (the e2e test checks
  the real driver pod: tests/e2e/test_spark_operator.py). Only the driver
  mounts a ServiceAccount token: it creates the executor pods; executors call no API.
  The image answers Spark's container arguments (`driver ...`, `executor`) the way Spark's own
  image does (components/preprocess: mlp_preprocess.spark_pod); the real pods run to
  completion on a node in tests/e2e/test_node_spark.py.
- a `PersistentVolumeClaim` `<name>-work` (ReadWriteMany, `spark.storage`) that the driver and
  every executor mount at `/var/lib/mlp-spark`, which is also their `TMPDIR`. Executors read the
  input and write their part files by path, and the driver assembles the output from those
  parts: each pod's own filesystem would hide them from the others. A remote input or output
  (an object store) is staged there by the driver's temporary directories.
- a `Role` and `RoleBinding` `<name>-driver`: what the driver needs in its namespace, as the
  Spark Operator chart's spark RBAC (pods, services, configmaps, persistentvolumeclaims).
- `NetworkPolicies`: `<name>-spark` lets the application's pods (driver and executors, which
  carry the component's selector labels) reach each other on `driverPort` and
  `blockManagerPort` and nothing else; `<name>-driver` lets the driver alone (Spark's
  `spark-role: driver` label) reach the Kubernetes API endpoint. The ports are pinned in
  `sparkConf` (Spark picks random ones otherwise).
"""

from __future__ import annotations

import math
from typing import Any

from platformgen.builders.network_policy import kubernetes_api_rule
from platformgen.builders.pod import (
    container_security_context,
    env,
    pod_annotations,
    pod_labels,
    pod_security_context,
    resource_list,
    resources,
    selector_metadata,
    workload_metadata,
)
from platformgen.naming import NAMESPACE_NAME, Manifest, metadata, selector_labels, volume_name
from platformgen.quantity import canonical_bytes, parse_quantity
from platformgen.resolve import ComponentView
from platformgen.spec.effective import environment_image
from platformgen.spec.model import Resources, Spark

API_VERSION = "sparkoperator.k8s.io/v1beta2"
ROLE_LABEL = "spark-role"
"""The label Spark puts on its pods: `driver` or `executor`."""
CONTAINERS = {"driver": "spark-kubernetes-driver", "executor": "spark-kubernetes-executor"}
"""The container Spark takes from each pod template (its default container names)."""
HEAP_SHARE = 0.6
"""Share of a pod's memory request that is the JVM heap; the rest is memoryOverhead."""
DRIVER_RULES = (
    ("pods", "configmaps", "persistentvolumeclaims", "services"),
    ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
)
"""What the driver does in its namespace (the Spark Operator chart's templates/spark/rbac.yaml)."""
SCRATCH_SIZE_LIMIT = "1Gi"
LOCAL_DIR = "spark.kubernetes.executor.volumes.emptyDir.spark-local-dir-1"
"""An executor volume named spark-local-dir-* is Spark's local storage (shuffle, spill): an
emptyDir bounded by `spark.executors.localDirSize` instead of Spark's unbounded default."""
LOCAL_DIR_PATH = "/var/data/spark-local-dir-1"


WORK_DIR = "/var/lib/mlp-spark"
"""Where the driver and every executor mount the work volume (also their TMPDIR)."""
WORK_VOLUME = "mlp-spark-work"
ACCESS_MODES = ["ReadWriteMany"]
"""Executors run on any node, and all of them read and write the same files."""


def work_claim(name: str) -> str:
    """The PersistentVolumeClaim of SparkApplication `name`."""
    return f"{name}-work"


def driver_name(name: str) -> str:
    """The driver's Role, RoleBinding and API NetworkPolicy of SparkApplication `name`."""
    return f"{name}-driver"


def _spark(view: ComponentView) -> Spark | None:
    c = view.component
    return c.spark if c.kind == "SparkApplication" else None


def _mebibytes(quantity: object) -> int:
    return int(parse_quantity(str(quantity)) // 2**20)


def spark_resources(resources: Resources) -> dict[str, Any]:
    """Spark's fields for a pod with `resources` (module doc); requests.cpu and
    requests.memory are required by spec.spark, limits.memory equals requests.memory."""
    requests, limits = resource_list(resources.requests), resource_list(resources.limits)
    memory = _mebibytes(resources.requests.memory)
    heap = int(memory * HEAP_SHARE)
    out: dict[str, Any] = {
        "coreRequest": requests["cpu"],
        "cores": max(1, math.ceil(parse_quantity(requests["cpu"]))),
        "memory": f"{heap}m",
        "memoryOverhead": f"{memory - heap}m",
    }
    if "cpu" in limits:
        out["coreLimit"] = limits["cpu"]
    return out


SPARK_WAIVERS = [
    (
        "checkov",
        "CKV_K8S_38",
        "the Spark driver creates, watches and deletes its executor pods through the Kubernetes "
        "API (its Role <name>-driver); the executors mount no token",
    ),
    *(
        (
            "checkov",
            check,
            "Spark driver and executor pods are batch pods that exit when the job is done; the "
            "driver tracks its executors by heartbeat and the operator the driver by its phase",
        )
        for check in ("CKV_K8S_8", "CKV_K8S_9")
    ),
    (
        "kube-score",
        "container-ephemeral-storage-request-and-limit",
        "spark-submit sets an executor container's resources from the SparkApplication's "
        "cpu and memory fields only; its scratch is bounded by emptyDir sizeLimits (its "
        "writable paths, and Spark's local dir: spark.executors.localDirSize)",
    ),
]
"""Checks that do not apply to the pods spark-submit makes of the SparkApplication (the gates
judge them, tests/security/test_spark_pods.py), each with its reason."""


def _template(view: ComponentView, role: str) -> dict[str, Any]:
    paths = sorted(view.component.writable_paths)
    variables = [e for e in env(view) if e["name"] != "TMPDIR"]
    container = {
        "env": sorted([*variables, {"name": "TMPDIR", "value": WORK_DIR}], key=lambda e: e["name"]),
        "image": view.image,
        "name": CONTAINERS[role],
        "securityContext": container_security_context(view),
        "volumeMounts": [
            *({"mountPath": path, "name": volume_name(path)} for path in paths),
            {"mountPath": WORK_DIR, "name": WORK_VOLUME},
        ],
    }
    if role == "driver":
        # The component's resources whole: Spark sets the same cpu and memory from its fields
        # and keeps the rest (ephemeral storage). Executors have Spark's fields only.
        container["resources"] = resources(view)
    meta: dict[str, Any] = {"labels": {**pod_labels(view), ROLE_LABEL: role}}
    annotations = pod_annotations(view)
    if annotations:
        meta["annotations"] = annotations
    return {
        "metadata": meta,
        "spec": {
            "automountServiceAccountToken": role == "driver",
            "containers": [container],
            "securityContext": pod_security_context(view),
            "terminationGracePeriodSeconds": view.spec.defaults.termination_grace_period_seconds,
            "volumes": [
                *(
                    {"emptyDir": {"sizeLimit": SCRATCH_SIZE_LIMIT}, "name": volume_name(path)}
                    for path in paths
                ),
                {
                    "name": WORK_VOLUME,
                    "persistentVolumeClaim": {"claimName": work_claim(view.name)},
                },
            ],
        },
    }


def build_spark_application(view: ComponentView) -> Manifest | None:
    spark = _spark(view)
    if spark is None:
        return None
    c = view.component
    ports = {
        "spark.blockManager.port": spark.block_manager_port,
        "spark.driver.blockManager.port": spark.block_manager_port,
        "spark.driver.port": spark.driver_port,
    }
    executors = spark.executors
    spec: dict[str, Any] = {
        "arguments": list(c.args),
        "driver": {
            **spark_resources(view.resources),
            "serviceAccount": view.name,
            "template": _template(view, "driver"),
        },
        "dynamicAllocation": {
            "enabled": True,
            "initialExecutors": executors.min_executors,
            "maxExecutors": executors.max_executors,
            "minExecutors": executors.min_executors,
            "shuffleTrackingEnabled": True,
        },
        "executor": {
            **spark_resources(executors.resources),
            "serviceAccount": view.name,
            "template": _template(view, "executor"),
        },
        # Base holds defaults.imageTag like every object; an environment's own reference is
        # written here (kustomize's `images:` retags containers only, not this field).
        "image": environment_image(view.spec, view.environment, view.name, c.image),
        "imagePullPolicy": "Always",
        "mainApplicationFile": spark.main_application_file,
        "mode": "cluster",
        "pythonVersion": "3",
        "restartPolicy": {"type": "Never"},
        "sparkConf": {
            **{key: str(port) for key, port in ports.items()},
            f"{LOCAL_DIR}.mount.path": LOCAL_DIR_PATH,
            f"{LOCAL_DIR}.options.sizeLimit": canonical_bytes(str(executors.local_dir_size)),
            "spark.ui.enabled": "false",
        },
        "sparkVersion": spark.spark_version,
        "type": "Python",
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "SparkApplication",
        "metadata": workload_metadata(view, extra_exceptions=SPARK_WAIVERS),
        "spec": spec,
    }


def build_work_volume(view: ComponentView) -> Manifest | None:
    spark = _spark(view)
    if spark is None:
        return None
    c = view.component
    spec: dict[str, Any] = {
        "accessModes": ACCESS_MODES,
        "resources": {"requests": {"storage": canonical_bytes(str(spark.storage))}},
    }
    if spark.storage_class_name is not None:
        spec["storageClassName"] = spark.storage_class_name
    meta = metadata(view.spec, view.name, c.role, view.namespace)  # the component's labels
    meta["name"] = work_claim(view.name)
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec}


def build_driver_roles(view: ComponentView) -> list[Manifest] | None:
    if _spark(view) is None:
        return None
    c = view.component
    resources, verbs = DRIVER_RULES
    meta = metadata(view.spec, view.name, c.role, view.namespace)
    meta["name"] = driver_name(view.name)
    binding = metadata(view.spec, view.name, c.role, view.namespace)
    binding["name"] = driver_name(view.name)
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [{"apiGroups": [""], "resources": list(resources), "verbs": list(verbs)}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": binding,
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": driver_name(view.name),
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": view.name, "namespace": view.namespace}
            ],
        },
    ]


def build_spark_network_policies(view: ComponentView) -> list[Manifest] | None:
    spark = _spark(view)
    if spark is None:
        return None
    selector = selector_labels(view.spec, view.name)
    peer = {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME: view.namespace}},
        "podSelector": {"matchLabels": selector},
    }
    ports = [
        {"port": port, "protocol": "TCP"}
        for port in sorted({spark.driver_port, spark.block_manager_port})
    ]
    between = selector_metadata(view, "NetworkPolicy")
    between["name"] = f"{view.name}-spark"
    policies: list[Manifest] = [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": between,
            "spec": {
                "egress": [{"ports": ports, "to": [peer]}],
                "ingress": [{"from": [peer], "ports": ports}],
                "podSelector": {"matchLabels": selector},
                "policyTypes": ["Ingress", "Egress"],
            },
        }
    ]
    api = kubernetes_api_rule(view.spec)
    if api is not None:  # spec.spark requires one
        driver = selector_metadata(view, "NetworkPolicy")
        driver["name"] = driver_name(view.name)
        policies.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": driver,
                "spec": {
                    "egress": [api],
                    "podSelector": {"matchLabels": {**selector, ROLE_LABEL: "driver"}},
                    "policyTypes": ["Egress"],
                },
            }
        )
    return policies
