"""The policy gates over a SparkApplication's objects and the pods the Spark Operator makes of it.

platform.yaml has no SparkApplication (its preprocess step runs inside the KFP pipeline), so the
environment gates (test_policy_gates.py) never see one: here they judge the full fixture's
(`kustomize build tests/golden/full/overlays/prod`, what a cluster would receive). The driver
and executor pods are out of sight of static checks (spark-submit makes them), so they are
DERIVED from the rendered object the way spark-submit does: the pod template, the
application's image, its ServiceAccount, and the container resources from Spark's fields
(requests: coreRequest and memory + memoryOverhead; limits: coreLimit and memoryLimit), added
to the template container's own (its ephemeral storage). The
e2e test against the real Spark Operator checks that derivation on the real driver pod.
kube-linter, kube-score and checkov then run with zero findings allowed; a broken pod proves
they fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from spark_pods import spark_pods

from ..e2e.kube import ROOT, Manifest, kustomize_build, load_documents
from .test_policy_gates import checkov, checkov_failures, kube_linter, kube_score

pytestmark = pytest.mark.tools

OVERLAY = ROOT / "tests" / "golden" / "full" / "overlays" / "prod"


@pytest.fixture(scope="module")
def documents() -> list[Manifest]:
    return load_documents(kustomize_build(OVERLAY))


def _write(path: Path, documents: list[Manifest]) -> Path:
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def judged(documents: list[Manifest], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SparkApplication component's objects and its derived pods, in one file."""
    (app,) = [d for d in documents if d["kind"] == "SparkApplication"]
    name = app["metadata"]["name"]
    own = [
        d
        for d in documents
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/name") == name
        and d["kind"] != "SparkApplication"
    ]
    return _write(tmp_path_factory.mktemp("spark") / "spark.yaml", own + spark_pods(app))


def test_the_derived_pods_are_the_drivers_and_executors(judged: Path) -> None:
    pods = [d for d in load_documents(judged.read_text(encoding="utf-8")) if d["kind"] == "Pod"]
    roles = [p["metadata"]["labels"]["spark-role"] for p in pods]
    assert roles == ["driver", "executor"]
    images = {c["image"] for p in pods for c in p["spec"]["containers"]}
    assert images == {"registry.example.com/full/preprocess-python@sha256:" + "c" * 64}


def test_kube_linter_on_spark_objects_and_pods(judged: Path) -> None:
    findings = kube_linter(judged)
    assert not findings, "kube-linter:\n" + "\n".join(findings)


def test_kube_score_on_spark_objects_and_pods(judged: Path) -> None:
    findings = kube_score(judged)
    assert not findings, "kube-score:\n" + "\n".join(findings)


def test_checkov_on_spark_objects_and_pods(judged: Path) -> None:
    results = checkov("--framework", "kubernetes", "--file", str(judged))
    assert results["passed_checks"], "checkov checked nothing"
    failures = checkov_failures(results)
    assert not failures, "checkov:\n" + "\n".join(failures)


def test_a_writable_root_or_a_root_user_fails_the_gates(judged: Path, tmp_path: Path) -> None:
    documents = load_documents(judged.read_text(encoding="utf-8"))
    for d in documents:
        if d["kind"] == "Pod":
            context: dict[str, Any] = d["spec"]["containers"][0]["securityContext"]
            context["readOnlyRootFilesystem"] = False
            context["runAsUser"] = 0
            context.pop("runAsNonRoot")
            d["spec"]["securityContext"].pop("runAsNonRoot")
            d["spec"]["securityContext"]["runAsUser"] = 0
    broken = _write(tmp_path / "broken.yaml", documents)
    findings = kube_linter(broken)
    assert any(f.startswith("no-read-only-root-fs:") for f in findings), findings
    assert any(f.startswith("run-as-non-root:") for f in findings), findings
