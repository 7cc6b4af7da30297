"""The AlertmanagerConfig of `alertWebhook` and the KFP token of components that call KFP,
built from platform.yaml (the real spec): values derived from the spec, not written twice."""

from __future__ import annotations

from pathlib import Path

from platformgen.builders.alertmanager_config import build_alertmanager_config
from platformgen.builders.network_policy import build_network_policy
from platformgen.builders.pod import KFP_TOKEN_DIR, pod_spec
from platformgen.builders.prometheus_rule import build_prometheus_rule
from platformgen.resolve import ComponentView, resolve
from platformgen.spec.load import load_spec

ROOT = Path(__file__).resolve().parents[2]


def _views() -> dict[str, ComponentView]:
    return {view.name: view for view in resolve(load_spec(ROOT / "platform.yaml"), "prod")}


def test_drift_alerts_route_to_the_drift_monitor_in_its_namespace() -> None:
    view = _views()["drift-monitor"]
    config = build_alertmanager_config(view)
    assert config is not None
    assert config["metadata"]["namespace"] == "ml-serving"  # OnNamespace: the alerts' namespace
    assert config["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    rule = build_prometheus_rule(view)
    assert rule is not None
    alerts = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
    route = config["spec"]["route"]
    assert route["matchers"] == [{"name": "alertname", "value": "DriftMonitorFeatureDrift"}]
    assert "DriftMonitorFeatureDrift" in alerts  # the route names an alert that is rendered
    (receiver,) = config["spec"]["receivers"]
    assert receiver["name"] == route["receiver"]
    assert receiver["webhookConfigs"] == [
        {
            "sendResolved": False,
            "url": "http://drift-monitor.ml-serving.svc.cluster.local:8001/alerts",
        }
    ]
    assert build_alertmanager_config(_views()["model-server"]) is None


def test_alertmanager_may_reach_the_webhook_port() -> None:
    policy = build_network_policy(_views()["drift-monitor"])
    assert policy is not None
    peers = [
        (
            peer["namespaceSelector"]["matchLabels"],
            peer["podSelector"]["matchLabels"],
            rule["ports"],
        )
        for rule in policy["spec"]["ingress"]
        for peer in rule["from"]
    ]
    assert (
        {"kubernetes.io/metadata.name": "monitoring"},
        {"app.kubernetes.io/name": "alertmanager"},
        [{"port": 8001, "protocol": "TCP"}],
    ) in peers
    # The webhook port (POST /alerts starts retraining) is Alertmanager's alone: the model
    # server, whose payload logger posts /log on 8000, gets no rule that opens 8001.
    others = [
        ports for ns, labels, ports in peers if labels != {"app.kubernetes.io/name": "alertmanager"}
    ]
    assert others and all({"port": 8001, "protocol": "TCP"} not in ports for ports in others)


def test_components_with_kfp_rbac_get_the_projected_kfp_token() -> None:
    views = _views()
    for name in ("drift-monitor", "retrain"):
        spec = pod_spec(views[name])
        (volume,) = [v for v in spec["volumes"] if "projected" in v]
        token = volume["projected"]["sources"][0]["serviceAccountToken"]
        assert token["audience"] == "pipelines.kubeflow.org"
        mounts = spec["containers"][0]["volumeMounts"]
        assert {"mountPath": KFP_TOKEN_DIR, "name": volume["name"], "readOnly": True} in mounts
    spec = pod_spec(views["tune-model"])
    assert not [v for v in spec["volumes"] if "projected" in v]
