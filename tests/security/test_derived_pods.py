"""The policy gates also judge the pods that controllers create from our custom resources.

KServe (with Knative, in Serverless mode) and Katib create pods from the InferenceService and
the Experiment; those pods are never in the rendered output, so the gates over it
(test_policy_gates.py) cannot see them. Here they are DERIVED from the rendered objects by
tests/e2e/kube.derived_workloads: the predictor's Deployment, including the queue-proxy
sidecar Knative adds in Serverless mode (bounded by the queue.sidecar.serving.knative.dev
annotations the generator sets), and the trial Job from the trial template. kube-linter,
kube-score and checkov then run over those derived workloads with zero findings allowed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ..e2e.kube import Manifest, derived_workloads, load_documents
from .test_policy_gates import checkov, checkov_failures, kube_linter, kube_score

pytestmark = pytest.mark.tools


@pytest.fixture(scope="module")
def derived(rendered: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Manifest]]:
    workloads = [w for doc in load_documents(rendered) for w in derived_workloads(doc)]
    if not workloads:
        pytest.skip("no InferenceService or Experiment in this environment")
    # The gates look for a workload's metadata like any other: give the derived ones ours.
    for workload in workloads:
        template = workload["spec"]["template"]
        workload["metadata"]["labels"] = dict(template["metadata"]["labels"])
    path = tmp_path_factory.mktemp("derived") / "derived.yaml"
    path.write_text(yaml.safe_dump_all(workloads, sort_keys=False), encoding="utf-8")
    return path, workloads


def test_derived_pods_include_what_controllers_add(derived: tuple[Path, list[Manifest]]) -> None:
    _, workloads = derived
    containers = {c["name"] for w in workloads for c in w["spec"]["template"]["spec"]["containers"]}
    assert "kserve-container" in containers or "training-container" in containers


def test_kube_linter_on_derived_pods(derived: tuple[Path, list[Manifest]]) -> None:
    findings = kube_linter(derived[0])
    assert not findings, "kube-linter on derived pods:\n" + "\n".join(findings)


def test_kube_score_on_derived_pods(derived: tuple[Path, list[Manifest]]) -> None:
    findings = kube_score(derived[0])
    assert not findings, "kube-score on derived pods:\n" + "\n".join(findings)


def test_checkov_on_derived_pods(derived: tuple[Path, list[Manifest]]) -> None:
    results = checkov("--framework", "kubernetes", "--file", str(derived[0]))
    assert results["passed_checks"], "checkov checked nothing"
    failures = checkov_failures(results)
    assert not failures, "checkov on derived pods:\n" + "\n".join(failures)
