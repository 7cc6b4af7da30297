"""The e2e gates fail on a deliberately broken input (tests/fixtures/broken/).

A privileged container: the apply warns "would violate PodSecurity" and the ReplicaSet cannot
create its Pod, so both test_apply_is_clean and test_workloads_created_their_pods would fail.
"""

from __future__ import annotations

import pytest

from .kube import ROOT, Cluster, apply, environments, load_documents, wait_for_pods

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
