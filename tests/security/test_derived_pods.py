"""The policy gates also judge the pods that controllers create from our custom resources.

KServe (with Knative, in Knative mode) and Katib create pods from the InferenceService and
the Experiment; those pods are never in the rendered output, so the gates over it
(test_policy_gates.py) cannot see them. Here they are DERIVED from the rendered objects by
tests/e2e/kube.derived_workloads: the predictor's Deployment, including the queue-proxy
sidecar Knative adds in Knative mode (bounded by the queue.sidecar.serving.knative.dev
annotations the generator sets), and the trial Job from the trial template. kube-linter,
kube-score and checkov then run over those derived workloads with zero findings allowed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ..e2e.derived import derived_workloads
from ..e2e.kube import Manifest, load_documents
from .test_policy_gates import checkov, checkov_failures, kube_linter, kube_score

pytestmark = pytest.mark.tools


@pytest.fixture(scope="module")
def derived(rendered: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Manifest]]:
    documents = load_documents(rendered)
    workloads = []
    for doc in documents:
        for workload in derived_workloads(doc):
            # The controller's workload carries the component's labels and the policy
            # waivers declared for it (with their reasons) on the custom resource.
            template = workload["spec"]["template"]
            workload["metadata"]["labels"] = dict(template["metadata"]["labels"])
            annotations = doc["metadata"].get("annotations", {})
            if annotations:
                workload["metadata"]["annotations"] = dict(annotations)
            workloads.append(workload)
    if not workloads:
        pytest.skip("no InferenceService or Experiment in this environment")
    # Context the gates resolve references against (not judged here: test_policy_gates.py
    # judges the rendered objects): the service accounts and the NetworkPolicies.
    pods = [w["spec"]["template"]["metadata"]["labels"] for w in workloads]

    def selects_a_derived_pod(policy: Manifest) -> bool:
        wanted = policy["spec"].get("podSelector", {}).get("matchLabels", {}).items()
        return any(wanted <= labels.items() for labels in pods)

    accounts = {w["spec"]["template"]["spec"].get("serviceAccountName") for w in workloads}
    context = [
        d
        for d in documents
        if (d["kind"] == "ServiceAccount" and d["metadata"]["name"] in accounts)
        or (d["kind"] == "NetworkPolicy" and selects_a_derived_pod(d))
    ]
    path = tmp_path_factory.mktemp("derived") / "derived.yaml"
    path.write_text(yaml.safe_dump_all(workloads + context, sort_keys=False), encoding="utf-8")
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


def test_an_unbounded_queue_proxy_is_caught(rendered: str, tmp_path: Path) -> None:
    """Without the queue.sidecar.serving.knative.dev annotations the sidecar Knative adds has
    no limits: the gates over derived pods see it."""
    isvcs = [
        d
        for d in load_documents(rendered)
        if d["kind"] == "InferenceService"
        and d["metadata"].get("annotations", {}).get("serving.kserve.io/deploymentMode")
        == "Knative"
    ]
    if not isvcs:
        pytest.skip("no Knative InferenceService in this environment")
    isvc = isvcs[0]
    isvc["spec"]["predictor"]["annotations"] = {
        k: v
        for k, v in isvc["spec"]["predictor"].get("annotations", {}).items()
        if not k.startswith("queue.sidecar.serving.knative.dev/")
    }
    [deployment] = derived_workloads(isvc)
    path = tmp_path / "unbounded.yaml"
    path.write_text(yaml.safe_dump(deployment, sort_keys=False), encoding="utf-8")
    assert any("queue-proxy" in f and "limit" in f.lower() for f in kube_linter(path)), kube_linter(
        path
    )
