"""The e2e gates fail on a deliberately broken input (tests/fixtures/broken/).

A privileged container: the apply warns "would violate PodSecurity" and the ReplicaSet cannot
create its Pod, so both test_apply_is_clean and test_workloads_created_their_pods would fail.
A changed object: the check behind "a second apply changes nothing" and "prune touched nothing
else" reports it.
"""

from __future__ import annotations

import time

import pytest
import yaml

from .kube import (
    MANAGED_FIELDS_RESOLUTION,
    ROOT,
    Cluster,
    apply,
    changed_objects,
    environments,
    load_documents,
    snapshot,
    wait_for_pods,
)

pytestmark = pytest.mark.tools

BROKEN = ROOT / "tests" / "fixtures" / "broken"


@pytest.mark.parametrize("env", environments()[:1], indirect=True)
def test_privileged_container_is_rejected_by_pod_security(cluster: Cluster) -> None:
    text = (BROKEN / "privileged-deployment.yaml").read_text(encoding="utf-8")
    deployment = next(d for d in load_documents(text) if d["kind"] == "Deployment")
    try:
        warnings = apply(cluster, text, applyset=None)
        assert any("would violate PodSecurity" in w for w in warnings), warnings
        assert any("privileged" in w for w in warnings), warnings
        with pytest.raises(AssertionError, match=r"violates PodSecurity .*privileged"):
            wait_for_pods(cluster, deployment)
    finally:
        cluster.kubectl("delete", "namespace", "broken-psa", "--wait=false", "--ignore-not-found")


@pytest.mark.parametrize("env", environments()[:1], indirect=True)
def test_a_changing_apply_is_detected(cluster: Cluster) -> None:
    """The no-op and untouched checks (changed_objects) see a real change: a ConfigMap applied
    twice unchanged shows nothing, applied with a new value shows up."""
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "e2e-change-probe", "namespace": "default"},
        "data": {"value": "1"},
    }
    try:
        apply(cluster, yaml.safe_dump(config), applyset=None)
        before = snapshot(cluster, [config])
        time.sleep(MANAGED_FIELDS_RESOLUTION)
        apply(cluster, yaml.safe_dump(config), applyset=None)
        assert changed_objects(before, snapshot(cluster, [config])) == {}
        time.sleep(MANAGED_FIELDS_RESOLUTION)
        apply(cluster, yaml.safe_dump({**config, "data": {"value": "2"}}), applyset=None)
        assert list(changed_objects(before, snapshot(cluster, [config]))) == [
            ("", "ConfigMap", "default", "e2e-change-probe")
        ]
    finally:
        cluster.kubectl("delete", "-n", "default", "configmap/e2e-change-probe")
