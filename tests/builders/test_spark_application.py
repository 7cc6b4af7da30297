"""SparkApplication (builders.spark_application): the object, its driver's RBAC and its
NetworkPolicies, from the full fixture; and kubeconform against the vendored Spark Operator CRD
(scripts/install-tools.sh CRD_SOURCES), which passes the rendered object and fails a broken one."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from platformgen.builders import build_platform
from platformgen.checks.validate import KUBERNETES_VERSIONS, kubeconform_command
from platformgen.naming import Manifest
from platformgen.spec.load import load_spec
from platformgen.versions import pinned

from support import ROOT, SPECS, tool

NAME = "preprocess-spark"
UPSTREAM_CHART = "charts/spark-operator-chart/templates/spark/rbac.yaml"


def rendered(env: str | None) -> dict[tuple[str, str], Manifest]:
    spec = load_spec(SPECS / "full.yaml")
    return {(m["kind"], m["metadata"]["name"]): m for m in build_platform(spec, env)[NAME]}


def test_driver_and_executors_from_the_spec() -> None:
    app = rendered(None)[("SparkApplication", NAME)]["spec"]
    assert (app["type"], app["mode"], app["sparkVersion"]) == ("Python", "cluster", "4.3.0")
    assert app["mainApplicationFile"] == "local:///app/mlp_preprocess/__main__.py"
    assert "--engine=spark" in app["arguments"]
    assert app["image"] == "registry.example.com/full/preprocess-python:2.0.0"
    # Driver: the component's resources (500m/1Gi, limits 1 CPU/1Gi); the pod asks for exactly
    # the memory request: heap (60%) + overhead (and spark-submit makes that its limit too).
    driver = app["driver"]
    assert (driver["cores"], driver["coreRequest"], driver["coreLimit"]) == (1, "500m", "1")
    assert int(driver["memory"][:-1]) + int(driver["memoryOverhead"][:-1]) == 1024
    assert "memoryLimit" not in driver  # the operator's webhook alone applies it
    executor = app["executor"]
    assert (executor["cores"], executor["coreRequest"]) == (2, "2")
    assert int(executor["memory"][:-1]) + int(executor["memoryOverhead"][:-1]) == 3 * 1024
    assert executor["coreLimit"] == "2"
    assert app["dynamicAllocation"] == {
        "enabled": True,
        "initialExecutors": 1,
        "maxExecutors": 4,
        "minExecutors": 1,
        "shuffleTrackingEnabled": True,
    }
    assert driver["serviceAccount"] == executor["serviceAccount"] == NAME


@pytest.mark.parametrize("role", ["driver", "executor"])
def test_pods_are_restricted_with_writable_scratch(role: str) -> None:
    template = rendered(None)[("SparkApplication", NAME)]["spec"][role]["template"]
    pod = template["spec"]
    assert template["metadata"]["labels"]["spark-role"] == role
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    # Only the driver talks to the API (it creates the executors).
    assert pod["automountServiceAccountToken"] is (role == "driver")
    (container,) = pod["containers"]
    assert container["name"] == f"spark-kubernetes-{role}"
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["allowPrivilegeEscalation"] is False
    assert context["runAsNonRoot"] is True
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts == {"/tmp": "tmp", "/var/lib/mlp-spark": "mlp-spark-work"}
    if role == "driver":  # the component's, whole (Spark sets the same cpu and memory)
        assert container["resources"] == {
            "limits": {"cpu": "1", "ephemeral-storage": "2Gi", "memory": "1Gi"},
            "requests": {"cpu": "500m", "ephemeral-storage": "1Gi", "memory": "1Gi"},
        }
    else:  # Spark's fields only; the local dir is bounded instead
        assert "resources" not in container
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tmp"]["emptyDir"] == {"sizeLimit": "1Gi"}
    assert volumes["mlp-spark-work"] == {
        "name": "mlp-spark-work",
        "persistentVolumeClaim": {"claimName": f"{NAME}-work"},
    }
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TMPDIR"] == "/var/lib/mlp-spark"  # the driver's staging, seen by every executor


def test_driver_and_executors_share_a_work_claim() -> None:
    """Executors read the input and write their part files by path; the driver assembles the
    output from them: one ReadWriteMany claim, mounted at the same path in every pod."""
    claim = rendered(None)[("PersistentVolumeClaim", f"{NAME}-work")]
    assert claim["spec"] == {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": "10Gi"}},
    }
    assert claim["metadata"]["labels"]["app.kubernetes.io/name"] == NAME


def test_an_environment_pins_the_image_spark_submit_uses() -> None:
    """kustomize's `images:` retags containers only: the environment writes spec.image."""
    app = rendered("prod")[("SparkApplication", NAME)]["spec"]
    assert app["image"] == "registry.example.com/full/preprocess-python@sha256:" + "c" * 64
    assert rendered("dev")[("SparkApplication", NAME)]["spec"]["image"].endswith(":dev")


def test_driver_rbac_is_the_upstream_charts() -> None:
    role = rendered(None)[("Role", f"{NAME}-driver")]
    binding = rendered(None)[("RoleBinding", f"{NAME}-driver")]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": NAME, "namespace": "pipelines"}
    ]
    chart = _upstream_chart_rules()
    (rule,) = role["rules"]
    assert sorted(rule["resources"]) == sorted(chart["resources"])
    assert sorted(rule["verbs"]) == sorted(chart["verbs"])
    assert rule["apiGroups"] == chart["apiGroups"] == [""]


def _upstream_chart_rules() -> dict[str, Any]:
    """The rules of the Spark Operator chart's spark Role, from the same module the CRDs come
    from (its Helm template: the rules block is plain YAML)."""
    version = pinned()["SPARK_OPERATOR_VERSION"]
    module = f"github.com/kubeflow/spark-operator/v2@{version}"
    # `go mod download` prints the module's directory, fetching it when the module cache lacks
    # it (a cleaned cache, or one other than the tools were installed with).
    found = subprocess.run(
        ["go", "mod", "download", "-json", module],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "GOFLAGS": "", "GO111MODULE": "on"},
    )
    if found.returncode != 0:
        pytest.fail(f"go mod download {module} failed:\n{found.stdout}{found.stderr}")
    path = Path(json.loads(found.stdout)["Dir"]) / UPSTREAM_CHART
    text = path.read_text(encoding="utf-8")
    block = text[text.index("rules:") : text.index("---", text.index("rules:"))]
    (rule,) = yaml.safe_load(block)["rules"]
    return dict(rule)


def test_network_policies_open_spark_ports_and_the_api_for_the_driver_only() -> None:
    objects = rendered(None)
    between = objects[("NetworkPolicy", f"{NAME}-spark")]["spec"]
    ports = [{"port": 7078, "protocol": "TCP"}, {"port": 7079, "protocol": "TCP"}]
    (ingress,) = between["ingress"]
    (egress,) = between["egress"]
    assert ingress["ports"] == egress["ports"] == ports
    assert ingress["from"] == egress["to"]
    assert ingress["from"][0]["podSelector"] == between["podSelector"]
    driver = objects[("NetworkPolicy", f"{NAME}-driver")]["spec"]
    assert driver["podSelector"]["matchLabels"]["spark-role"] == "driver"
    assert driver["policyTypes"] == ["Egress"]
    assert driver["egress"] == [
        {
            "ports": [{"port": 6443, "protocol": "TCP"}],
            "to": [{"ipBlock": {"cidr": "192.0.2.0/28"}}],
        }
    ]
    # The ports Spark would pick at random are pinned to the ones the policy opens.
    conf = objects[("SparkApplication", NAME)]["spec"]["sparkConf"]
    assert {int(conf[k]) for k in conf if k.endswith(".port")} == {p["port"] for p in ports}


def test_executor_scratch_is_bounded() -> None:
    conf = rendered(None)[("SparkApplication", NAME)]["spec"]["sparkConf"]
    local_dir = "spark.kubernetes.executor.volumes.emptyDir.spark-local-dir-1"
    assert conf[f"{local_dir}.options.sizeLimit"] == "8Gi"
    assert conf[f"{local_dir}.mount.path"] == "/var/data/spark-local-dir-1"


def _kubeconform(tmp_path: Path, app: Manifest) -> dict[str, Any]:
    kubeconform = tool("kubeconform")
    schemas = ROOT / ".tools" / "schemas"
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(app), encoding="utf-8")
    command = kubeconform_command(kubeconform, schemas, KUBERNETES_VERSIONS[-1], [str(path)])
    done = subprocess.run(command, cwd=schemas, capture_output=True, text=True, check=False)
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.mark.tools
def test_kubeconform_validates_against_the_vendored_crd(tmp_path: Path) -> None:
    app = rendered("prod")[("SparkApplication", NAME)]
    report = _kubeconform(tmp_path, app)
    assert report["summary"]["valid"] == 1, report
    sources = (ROOT / ".tools" / "schemas" / "SOURCES").read_text(encoding="utf-8")
    assert "github.com/kubeflow/spark-operator/v2@v2.5." in sources


@pytest.mark.tools
def test_kubeconform_fails_a_broken_spark_application(tmp_path: Path) -> None:
    app = copy.deepcopy(rendered("prod")[("SparkApplication", NAME)])
    app["spec"]["mode"] = "local"  # not an enum value
    app["spec"]["driver"]["coresLimit"] = "1"  # unknown field (strict)
    report = _kubeconform(tmp_path, app)
    assert report["summary"]["invalid"] == 1, report
    (resource,) = report["resources"]
    assert "at '/spec/driver': additional properties 'coresLimit' not allowed" in resource["msg"]
    assert "at '/spec/mode': value must be one of 'cluster', 'client'" in resource["msg"]
