"""Every alert the generator can emit has a proof that it can fire, in one of two forms:

- through the real chain: tests/e2e/test_alert_chain.py has a fault for it in `FAULTS` and
  waits for it to fire (Prometheus Operator -> Prometheus -> the real model server and drift
  monitor);
- with promtool: a case in tests/alerts/<rule>.yaml expects it to fire, on input series that
  carry the labels Prometheus stores after the operator's relabelling (`job` and `instance`
  on every series; `namespace`, `service`, `pod` and `endpoint` on series scraped through our
  ServiceMonitors). A series written as the application exports it proves nothing: that is
  how `endpoint=~"v1_predict|v2_infer"` passed its unit tests while it could never fire.

"Can emit" is every alert rendered for platform.yaml (which must have a component of every
kind) with every alert threshold set on every component that exports metrics, so a new
threshold (or a new kind of alert) without a proof fails here. The fixture
tests/alerts/fixtures/pre-relabelling-proof.yaml and a made-up alert prove the check fails.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any, get_args

import yaml

from platformgen.builders.prometheus_rule import BATCH_KINDS
from platformgen.kinds import traits
from platformgen.naming import camel
from platformgen.spec.model import AlertThresholds, Component

from ..e2e.kube import ROOT
from ..e2e.test_alert_chain import FAULTS

TESTS_DIR = Path(__file__).resolve().parent
PRE_RELABELLING = TESTS_DIR / "fixtures" / "pre-relabelling-proof.yaml"
PLATFORMGEN = ROOT / ".venv" / "bin" / "platformgen"

ALWAYS = frozenset({"job", "instance"})
"""Labels Prometheus attaches to every scraped series."""
OUR_TARGETS = frozenset({"namespace", "service", "pod", "endpoint"})
"""Target labels the operator's relabelling gives series scraped through our ServiceMonitors."""
KUBE_STATE_METRICS = "kube-state-metrics"
SERIES = re.compile(r"^\s*(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{(?P<labels>.*)\}\s*$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


def emittable_alerts(tmp_path: Path) -> dict[str, str]:
    """Alert name -> its suffix (the part after the component's name), for every alert
    platformgen renders when every component of platform.yaml sets every threshold."""
    spec: dict[str, Any] = yaml.safe_load((ROOT / "platform.yaml").read_text(encoding="utf-8"))
    # Kinds whose components can alert: pods we run (long-running) or Jobs (batch). The others
    # (Experiment, TrainJob, SparkApplication) have pods a controller makes and no metrics port;
    # their failures show as the Argo CD health checks' Degraded, not as alerts.
    kinds = {
        kind
        for kind in get_args(Component.model_fields["kind"].annotation)
        if traits(kind).batch or traits(kind).long_running
    }
    present = {c["kind"] for c in spec["components"].values()}
    if present & BATCH_KINDS:  # batch kinds share one alert set (prometheus_rule.BATCH_KINDS)
        present |= BATCH_KINDS
    assert kinds <= present, f"platform.yaml has no component of kind {sorted(kinds - present)}"
    thresholds = {
        field.alias or name: 0.5
        for name, field in AlertThresholds.model_fields.items()
        if field.default is None
    }
    for component in spec["components"].values():
        if component.get("metrics"):  # thresholds alert on the component's own metrics
            component["alerts"] = {**component.get("alerts", {}), **thresholds}
    for pipeline in spec.get("pipelines", {}).values():  # compiled files: relative to the spec
        pipeline["compiled"] = str(ROOT / pipeline["compiled"])
    spec_path = tmp_path / "platform.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    result = subprocess.run(
        [str(PLATFORMGEN), "render", "--spec", str(spec_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"platformgen render failed:\n{result.stderr}"
    alerts: dict[str, str] = {}
    for path in sorted((tmp_path / "base").glob("*/prometheus-rule.yaml")):
        rule = yaml.safe_load(path.read_text(encoding="utf-8"))
        prefix = camel(rule["metadata"]["name"])
        for group in rule["spec"]["groups"]:
            for entry in group["rules"]:
                if "alert" in entry:
                    assert entry["alert"].startswith(prefix), entry["alert"]
                    alerts[entry["alert"]] = entry["alert"].removeprefix(prefix)
    return alerts


def series_labels(series: str) -> tuple[str, dict[str, str]]:
    match = SERIES.match(series)
    assert match, f"not a series selector: {series!r}"
    return match["name"], dict(LABEL.findall(match["labels"]))


def metrics_ports() -> set[str]:
    """The ServiceMonitor port names, i.e. every value the `endpoint` target label can take."""
    spec = yaml.safe_load((ROOT / "platform.yaml").read_text(encoding="utf-8"))
    return {c["metrics"]["port"] for c in spec["components"].values() if c.get("metrics")}


def scraped_services() -> set[tuple[str, str]]:
    """(namespace, name) of every rendered Service a rendered ServiceMonitor selects: the
    values the `namespace` and `service` (and, the operator's default, `job`) target labels
    can take."""
    docs = [
        yaml.safe_load(path.read_text(encoding="utf-8"))
        for path in sorted((ROOT / "base").glob("*/*.yaml"))
        if path.name != "kustomization.yaml"
    ]
    monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
    return {
        (svc["metadata"]["namespace"], svc["metadata"]["name"])
        for svc in docs
        if svc["kind"] == "Service"
        for m in monitors
        if svc["metadata"]["namespace"] in m["spec"]["namespaceSelector"]["matchNames"]
        and m["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    }


def relabelling_problems(series: str, ports: set[str], services: set[tuple[str, str]]) -> list[str]:
    """Why `series` is not labelled as Prometheus stores it (empty when it is)."""
    _, labels = series_labels(series)
    problems = []
    missing = set(ALWAYS - labels.keys())
    if labels.get("job") != KUBE_STATE_METRICS:
        missing |= OUR_TARGETS - labels.keys()
        endpoint = labels.get("endpoint")
        if endpoint is not None and endpoint not in ports:
            problems.append(
                f'endpoint="{endpoint}" is not a ServiceMonitor port ({", ".join(sorted(ports))}):'
                " the application's label is stored as exported_endpoint"
            )
        service = (labels.get("namespace"), labels.get("service"))
        if None not in service and service not in services:
            problems.append(
                f'service="{service[1]}" in namespace "{service[0]}" is no Service a '
                "ServiceMonitor selects ("
                + ", ".join(f"{n}/{s}" for n, s in sorted(services))
                + ")"
            )
        if "job" in labels and "service" in labels and labels["job"] != labels["service"]:
            problems.append(f'job="{labels["job"]}" is not the Service\'s name')
    if missing:
        problems.append(f"no {', '.join(sorted(missing))}")
    return [f"{series}: {'; '.join(problems)}"] if problems else []


def promtool_proofs(files: list[Path]) -> tuple[set[str], list[str]]:
    """(alert names with a firing case on post-relabelling series, why other cases are not)."""
    proven: set[str] = set()
    rejected: list[str] = []
    ports = metrics_ports()
    services = scraped_services()
    for path in files:
        suite = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in suite["tests"]:
            firing = [
                c["alertname"] for c in case.get("alert_rule_test", []) if c.get("exp_alerts")
            ]
            if not firing:
                continue
            problems = [
                p
                for s in case.get("input_series", [])
                for p in relabelling_problems(s["series"], ports, services)
            ]
            if problems:
                rejected.append(f"{path.name}: {case['name']}: " + "; ".join(problems))
            else:
                proven.update(firing)
    return proven, rejected


def unproven(alerts: dict[str, str], chain: set[str], promtool: set[str]) -> list[str]:
    """Alerts with neither a chain fault for their suffix nor a promtool proof."""
    promtool_suffixes = {alerts[a] for a in promtool if a in alerts}
    return sorted(
        alert
        for alert, suffix in alerts.items()
        if suffix not in chain and alert not in promtool and suffix not in promtool_suffixes
    )


def test_every_emittable_alert_has_a_proof(tmp_path: Path) -> None:
    alerts = emittable_alerts(tmp_path)
    proven, rejected = promtool_proofs(sorted(TESTS_DIR.glob("*.yaml")))
    missing = unproven(alerts, set(FAULTS), proven)
    assert not missing, (
        "alerts the generator can emit with no proof that they fire (add a fault to "
        "tests/e2e/test_alert_chain.py FAULTS, or a promtool case on post-relabelling series "
        "in tests/alerts/<rule>.yaml):\n  "
        + "\n  ".join(missing)
        + ("\ncases that do not count:\n  " + "\n  ".join(rejected) if rejected else "")
    )
    assert not rejected, "promtool cases on series Prometheus would never store:\n" + "\n".join(
        rejected
    )
    print(
        "chain-proven: "
        + ", ".join(sorted(a for a, s in alerts.items() if s in FAULTS))
        + "\npromtool-proven: "
        + ", ".join(sorted(a for a, s in alerts.items() if s not in FAULTS))
    )


def test_a_new_alert_without_a_proof_fails(tmp_path: Path) -> None:
    alerts = emittable_alerts(tmp_path)
    proven, _ = promtool_proofs(sorted(TESTS_DIR.glob("*.yaml")))
    alerts["ModelServerQueueBacklog"] = "QueueBacklog"
    assert unproven(alerts, set(FAULTS), proven) == ["ModelServerQueueBacklog"]


def test_a_proof_on_pre_relabelling_series_does_not_count(tmp_path: Path) -> None:
    """The old model-server unit test fed `endpoint="v2_infer"` as the app exports it: without
    the chain, HighErrorRatio would have no proof."""
    alerts = emittable_alerts(tmp_path)
    proven, rejected = promtool_proofs([PRE_RELABELLING])
    assert "ModelServerHighErrorRatio" not in proven
    assert rejected, "the pre-relabelling case was accepted"
    assert 'endpoint="v2_infer" is not a ServiceMonitor port' in rejected[0], rejected
    assert "no instance, job, pod" in rejected[0], rejected
    assert 'service="model-server" in namespace "ml-serving" is no Service' in rejected[0], rejected
    chain_without_error_ratio = set(FAULTS) - {"HighErrorRatio"}
    assert "ModelServerHighErrorRatio" in unproven(alerts, chain_without_error_ratio, proven)
