"""The rendered platform running on a real node (issue 18, part 3).

The dev environment (model server in KServe's `Standard` mode) on a control plane with its own
node, the real KServe controller, the images `make images` builds, moto's S3 server and the
KFP v2beta1 stand-in as pods, the model the local pipeline trained in S3, and a Prometheus pod
running the Prometheus Operator's configuration: tests/e2e/node_platform.py brings it up.

- every Deployment, Job and InferenceService pod runs under Pod Security `restricted`, passes
  its probes and is Ready; both Jobs (submit a run and wait; schedule the recurring run)
  complete against the KFP stand-in;
- the model server answers v1 and v2 through the ClusterIP of KServe's Service (kube-proxy),
  from a pod the NetworkPolicies admit (the ingress gateway's labels), with the demo's
  prediction for the demo's row;
- Prometheus scrapes the model server and the drift monitor through their ServiceMonitors, and
  the drift monitor counts the rows KServe's logger agent sent it;
- the broken fixture: the model server's NetworkPolicy admitting another port than the one
  its Service sends to, and the answers stop (kube-router enforces it); restored, they return.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import yaml

from .kube import Manifest, apply
from .node_platform import (
    Platform,
    isvc,
    label,
    predict,
    predictor_pods,
    query,
    running_platform,
    start_to_ready,
)

pytestmark = pytest.mark.tools


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(tmp_path_factory.mktemp("platform")) as platform:
        yield platform


def test_every_platform_pod_is_ready_under_restricted(running: Platform) -> None:
    cluster = running.cluster
    namespaces = sorted(
        {
            d["metadata"]["namespace"]
            for d in running.documents
            if d["kind"] in ("Deployment", "Job", "InferenceService")
        }
    )
    for namespace in namespaces:
        labels = cluster.get_json("namespace", namespace)["metadata"]["labels"]
        assert labels.get("pod-security.kubernetes.io/enforce") == "restricted", (namespace, labels)
        for pod in cluster.get_json("pods", "-n", namespace)["items"]:
            for container in pod["spec"]["containers"]:
                if container["name"] != "agent":
                    assert container["imagePullPolicy"] == "Always", container
            phase = pod["status"]["phase"]
            ready = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
            assert phase == "Succeeded" or ready.get("Ready") == "True", (
                pod["metadata"]["name"],
                pod["status"],
            )
    meta = isvc(running.documents)["metadata"]
    live = cluster.get_json("inferenceservice", meta["name"], "-n", meta["namespace"])
    conditions = {c["type"]: c["status"] for c in live["status"].get("conditions", [])}
    assert conditions.get("PredictorReady") == "True", live["status"]
    (pod,) = predictor_pods(running)
    print(
        f"platform Ready {running.timings['platform_ready_seconds']} s after the apply; "
        f"the model server pod {start_to_ready(pod)} s from creation to Ready"
    )


def test_the_model_server_answers_v1_and_v2_through_its_cluster_ip(running: Platform) -> None:
    v1, v2 = predict(running)
    assert v1["predictions"][0] == running.expected["v1_prediction"], (v1, running.expected)
    assert label(v2) == running.expected["v1_prediction"], (v2, running.expected)


def test_prometheus_scrapes_both_and_the_drift_monitor_sees_the_traffic(running: Platform) -> None:
    """`up` by the Service each ServiceMonitor selects, and no target down: KServe's
    `model-server-predictor` Service carries the InferenceService's labels, so a monitor that
    selected by those alone scraped KServe's agent port, a target that is down. And the rows the
    logger agent posted: every request of this test is one row."""
    sent = 3
    for _ in range(sent):
        predict(running)  # a v1 and a v2 request: two rows

    def scraped() -> str | None:
        up = {r["metric"].get("service", "?"): r["value"][1] for r in query(running, "up")}
        wanted = {"model-server", "drift-monitor"}
        missing = {s for s in wanted if up.get(s) != "1"}
        down = {s for s, value in up.items() if value != "1"}
        return f"up: {up}" if missing or down else None

    running.cluster.wait_for("Prometheus to scrape both", scraped, timeout=180)

    def counted() -> str | None:
        rows = query(running, "sum(mlp_drift_rows_total)")
        return None if rows and float(rows[0]["value"][1]) >= 2 * sent else f"rows: {rows}"

    running.cluster.wait_for("the drift monitor to count the rows", counted, timeout=180)


def _model_server_policy(running: Platform) -> Manifest:
    meta = isvc(running.documents)["metadata"]
    (policy,) = [
        d
        for d in running.documents
        if d["kind"] == "NetworkPolicy"
        and d["metadata"]["name"] == meta["name"]
        and d["metadata"]["namespace"] == meta["namespace"]
    ]
    return policy


def test_a_policy_without_the_served_port_stops_the_answers(running: Platform) -> None:
    """The broken fixture: the model server's policy admits the gateway on another port than
    the one KServe's Service sends to; kube-router drops the requests. Restored, they pass."""
    policy = _model_server_policy(running)
    meta = isvc(running.documents)["metadata"]
    service = running.cluster.get_json(
        "service", f"{meta['name']}-predictor", "-n", meta["namespace"]
    )
    served = {p["targetPort"] for p in service["spec"]["ports"]}
    broken = copy.deepcopy(policy)
    shifted = 0
    for rule in broken["spec"]["ingress"]:
        for port in rule.get("ports", []):
            if port["port"] in served:
                port["port"] += 1
                shifted += 1
    assert shifted, (served, policy["spec"]["ingress"])
    apply(running.cluster, yaml.safe_dump(broken), applyset=None)
    try:

        def blocked() -> str | None:
            v1, v2 = predict(running, check=False)
            return None if v1 is None and v2 is None else f"still answered: {v1}, {v2}"

        running.cluster.wait_for("the broken policy to block the answers", blocked, timeout=60)
    finally:
        apply(running.cluster, yaml.safe_dump(policy), applyset=None)

    def answered() -> str | None:
        v1, _ = predict(running, check=False)
        return None if v1 is not None else "no answer yet"

    running.cluster.wait_for("the restored policy to admit the answers", answered, timeout=60)
