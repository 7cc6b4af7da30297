"""The rendered platform running on a real node, delivered by Argo CD (issue 18, parts 3 and 6).

The dev environment (model server in KServe's `Standard` mode) on a control plane with its own
node, the real KServe controller, the images `make images` builds, moto's S3 server and the
KFP v2beta1 stand-in as pods, the model the local pipeline trained in S3, and a Prometheus pod
running the Prometheus Operator's configuration: tests/e2e/node_platform.py brings it up, and a
real Argo CD syncs the rendered dev ApplicationSet from a Git repository of the spec copy
(tests/e2e/node_argocd.py: automated sync with prune and selfHeal, as dev renders it).

- Argo CD reports every generated Application Synced at the commit, and Healthy, with the rendered
  Lua health checks in effect: all but the Applications holding an object whose controller does
  not run here (node_platform.NOT_RECONCILED: Katib's Experiment, Trainer's TrainJob, the Spark
  Operator's SparkApplication), which are exactly Progressing, because of exactly those objects,
  whose status is empty;

- every Deployment, Job and InferenceService pod runs under Pod Security `restricted`, passes
  its probes and is Ready; both Jobs (submit a run and wait; schedule the recurring run)
  complete against the KFP stand-in;
- the model server answers v1 and v2 through the ClusterIP of KServe's Service (kube-proxy),
  from a pod the NetworkPolicies admit (the ingress gateway's labels), with the demo's
  prediction for the demo's row;
- Prometheus scrapes the model server and the drift monitor through their ServiceMonitors, and
  the drift monitor counts the rows KServe's logger agent sent it;
- the broken fixture: a commit that makes the model server's NetworkPolicy admit another port
  than the one its Service sends to; Argo CD syncs it and the answers stop (kube-router enforces
  it); the revert is synced and they return. (Through Git: selfHeal undoes a kubectl edit.)
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Iterator

import pytest
import yaml

from .kube import Manifest, identity
from .node_argocd import (
    Delivery,
    expected_health,
    report,
    resource_id,
    summary,
    without_status,
)
from .node_platform import (
    NOT_RECONCILED,
    SYNC_TIMEOUT,
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
    stages: dict[str, float] = {}

    @contextlib.contextmanager
    def timed(group: str, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            stages[f"{group} {name}"] = round(time.monotonic() - started, 1)

    work = tmp_path_factory.mktemp("platform")
    try:
        with running_platform(work, timed, delivery="argocd") as platform:
            yield platform
    finally:
        print(f"\nnode platform stages (s): {stages}")


def _delivery(running: Platform) -> Delivery:
    assert running.delivery is not None, "the platform was not delivered by Argo CD"
    return running.delivery


def test_argocd_reports_every_application_synced_and_healthy(running: Platform) -> None:
    """Argo CD's own status, read again now (the bring-up waited for the same): every
    Application Synced and every object's health what it can be here. The ones that are not
    Healthy are exactly those holding an object of a kind not reconciled here, Progressing for
    exactly those objects, which no controller gave a status."""
    delivery = _delivery(running)
    apps = delivery.applications()
    assert sorted(apps) == delivery.names
    problems = delivery.sync_problems(apps) + delivery.health_problems(apps)
    assert not problems, "\n".join(problems)
    managed = {resource_id(r) for app in apps.values() for r in app["status"]["resources"]}
    assert managed == {identity(d) for d in running.documents}, "exactly the dev overlay's objects"
    healths = delivery.healths()
    not_healthy = {name: health for name, health in healths.items() if health != "Healthy"}
    holding = {
        name
        for name, app in apps.items()
        for r in app["status"]["resources"]
        if expected_health(r["kind"], NOT_RECONCILED) == "Progressing"
    }
    assert not_healthy == dict.fromkeys(sorted(holding), "Progressing"), healths
    for name in holding:
        kinds = {r["kind"] for r in apps[name]["status"]["resources"]} & NOT_RECONCILED
        progressing = {
            f"{r['kind']} {r.get('namespace', '')}/{r['name']}"
            for r in apps[name]["status"]["resources"]
            if r.get("health", {}).get("status") == "Progressing"
        }
        assert progressing == set(without_status(running.cluster, apps[name], kinds)), name
    applications = report(delivery)
    print(
        f"argocd: {summary(applications)}; Synced {running.timings['argocd_synced_seconds']} s "
        f"after the ApplicationSet, health as expected {running.timings['argocd_healthy_seconds']}"
        " s after it; not Healthy: "
        + ", ".join(
            f"{a['name']} ({', '.join(a['not_healthy'])})"
            for a in applications
            if a["health"] != "Healthy"
        )
    )


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
        f"platform Ready {running.timings['platform_ready_seconds']} s after the delivery started; "
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
    """The broken fixture, committed: the model server's policy admits the gateway on another
    port than the one KServe's Service sends to; Argo CD syncs it and kube-router drops the
    requests. The revert, synced, lets them pass, and every Application is as before."""
    delivery = _delivery(running)
    policy = _model_server_policy(running)
    meta = isvc(running.documents)["metadata"]
    service = running.cluster.get_json(
        "service", f"{meta['name']}-predictor", "-n", meta["namespace"]
    )
    served = {p["targetPort"] for p in service["spec"]["ports"]}
    broken = copy.deepcopy(policy["spec"]["ingress"])
    shifted = 0
    for rule in broken:
        for port in rule.get("ports", []):
            if port["port"] in served:
                port["port"] += 1
                shifted += 1
    assert shifted, (served, policy["spec"]["ingress"])
    app = delivery.managing("NetworkPolicy", meta["namespace"], policy["metadata"]["name"])
    folder = delivery.repo.path / app["spec"]["source"]["path"]
    good = delivery.revision
    patch = {
        "apiVersion": policy["apiVersion"],
        "kind": policy["kind"],
        "metadata": {k: policy["metadata"][k] for k in ("name", "namespace")},
        "spec": {"ingress": broken},  # no merge key: the list is replaced
    }
    (folder / "broken-policy.yaml").write_text(yaml.safe_dump(patch), encoding="utf-8")
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text(encoding="utf-8"))
    kustomization.setdefault("patches", []).append({"path": "broken-policy.yaml"})
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization), encoding="utf-8")
    delivery.commit("model-server: the policy admits the wrong port (broken fixture)")
    try:
        delivery.wait("the broken policy synced", SYNC_TIMEOUT, health=False)

        def blocked() -> str | None:
            v1, v2 = predict(running, check=False)
            return None if v1 is None and v2 is None else f"still answered: {v1}, {v2}"

        running.cluster.wait_for("the broken policy to block the answers", blocked, timeout=60)
    finally:
        delivery.repo.git("revert", "--no-commit", "HEAD")
        delivery.commit("revert the broken fixture")
        delivery.wait("the revert synced", SYNC_TIMEOUT, health=False)
    assert delivery.repo.git("diff", good, "HEAD") == ""

    def answered() -> str | None:
        v1, _ = predict(running, check=False)
        return None if v1 is not None else "no answer yet"

    running.cluster.wait_for("the restored policy to admit the answers", answered, timeout=60)
    delivery.wait("every Application as before", SYNC_TIMEOUT)
