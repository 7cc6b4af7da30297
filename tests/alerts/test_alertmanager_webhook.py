"""A real Alertmanager delivers the drift alert to the real drift monitor, which starts a run.

The route comes from the AlertmanagerConfig platformgen renders for platform.yaml
(base/drift-monitor/alertmanager-config.yaml). The Prometheus Operator is not in this loop:
the test writes the Alertmanager configuration the way the operator translates an
AlertmanagerConfig (its receivers and route under the root route, plus the `namespace` matcher
of the default OnNamespace strategy); receiver URLs point at the local process and the group
wait is 1s instead of 30s (timings only). The alert is posted to Alertmanager's API as
Prometheus would post it. A route for another alert name delivers nothing (the route is what
decides).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..e2e.alert_chain import free_port, http_ok
from ..e2e.kube import ROOT, TOOLS_BIN, require_tools, wait_until

pytestmark = pytest.mark.tools

RENDERED = ROOT / "base" / "drift-monitor" / "alertmanager-config.yaml"
PYTHON = ROOT / ".venv" / "bin" / "python"


def alertmanager_yaml(config: dict[str, Any], local_url: str) -> dict[str, Any]:
    """The operator's translation of one AlertmanagerConfig, with the webhook made local."""
    namespace, name = config["metadata"]["namespace"], config["metadata"]["name"]

    def qualified(receiver: str) -> str:
        return f"{namespace}/{name}/{receiver}"

    spec = config["spec"]
    route = spec["route"]
    receivers = []
    for receiver in spec["receivers"]:
        hooks = []
        for hook in receiver["webhookConfigs"]:
            path = urllib.parse.urlsplit(hook["url"]).path
            hooks.append({"url": local_url + path, "send_resolved": hook["sendResolved"]})
        receivers.append({"name": qualified(receiver["name"]), "webhook_configs": hooks})
    matchers = [f'namespace="{namespace}"'] + [
        f'{m["name"]}{m.get("matchType", "=")}"{m["value"]}"' for m in route["matchers"]
    ]
    return {
        "route": {
            "receiver": "null",
            "routes": [
                {
                    "receiver": qualified(route["receiver"]),
                    "matchers": matchers,
                    "group_by": route["groupBy"],
                    "group_wait": "1s",
                    "group_interval": route["groupInterval"],
                    "repeat_interval": route["repeatInterval"],
                }
            ],
        },
        "receivers": [{"name": "null"}, *receivers],
    }


class Processes:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: list[Any] = []

    def start(self, name: str, argv: list[str]) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        self.logs.append(log)
        self.running[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        for process in self.running.values():
            process.terminate()
        for process in self.running.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self.logs:
            log.close()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    running = Processes(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def _reference(path: Path) -> None:
    lines = ["f0,f1,label"] + [f"{i % 7},{i % 5},a" for i in range(200)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _deliver(config: dict[str, Any], processes: Processes, tmp_path: Path) -> tuple[Path, str]:
    """Start the monitor and Alertmanager, post a drift alert and another alert; returns the
    marker the retraining command writes and the monitor's URL."""
    require_tools("alertmanager")
    marker = tmp_path / "retrained"
    reference = tmp_path / "reference.csv"
    _reference(reference)
    monitor_port, alerts_port, am_port = free_port(), free_port(), free_port()
    command = f"{sys.executable} -c \"open('{marker}', 'w').close()\""
    processes.start(
        "drift-monitor",
        [str(PYTHON), "-m", "mlp_drift", "serve", "--reference", str(reference),
         "--target", "label", "--port", str(monitor_port),
         "--alerts-port", str(alerts_port), "--retrain", "local",
         "--retrain-command", command, "--retrain-cooldown", "3600"],
    )  # fmt: skip
    monitor = f"http://127.0.0.1:{monitor_port}"
    config_file = tmp_path / "alertmanager.yml"
    # Alertmanager posts to the monitor's alerts port, as the rendered webhook URL says.
    local = f"http://127.0.0.1:{alerts_port}"
    config_file.write_text(yaml.safe_dump(alertmanager_yaml(config, local)), encoding="utf-8")
    processes.start(
        "alertmanager",
        [str(TOOLS_BIN / "alertmanager"), f"--config.file={config_file}",
         f"--storage.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{am_port}",
         "--cluster.listen-address="],
    )  # fmt: skip
    alertmanager = f"http://127.0.0.1:{am_port}"
    wait_until("the drift monitor", lambda: http_ok(f"{monitor}/readyz"), timeout=60)
    wait_until("Alertmanager", lambda: http_ok(f"{alertmanager}/-/ready"), timeout=60)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    labels = {"namespace": "ml-serving", "service": "drift-monitor", "severity": "warning"}
    alerts = [
        {"labels": {**labels, "alertname": "DriftMonitorFeatureDrift", "feature": "f1",
                    "reference_version": "3"},
         "annotations": {"summary": "Feature f1 has drifted"}, "startsAt": now,
         "generatorURL": "http://prometheus.example/graph"},
        {"labels": {**labels, "alertname": "ModelServerHighLatency"}, "startsAt": now},
    ]  # fmt: skip
    request = urllib.request.Request(
        f"{alertmanager}/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200
    return marker, monitor


def test_alertmanager_delivers_the_drift_alert_and_a_run_starts(
    processes: Processes, tmp_path: Path
) -> None:
    config = yaml.safe_load(RENDERED.read_text(encoding="utf-8"))
    marker, monitor = _deliver(config, processes, tmp_path)

    def retrained() -> str | None:
        return None if marker.is_file() else "no run started yet"

    try:
        wait_until("the retraining run", retrained, timeout=60)
    except AssertionError:
        raise AssertionError(
            processes.log("alertmanager") + "\n---\n" + processes.log("drift-monitor")
        ) from None
    with urllib.request.urlopen(f"{monitor}/metrics", timeout=5) as response:  # noqa: S310
        metrics = response.read().decode()
    assert 'mlp_drift_retrain_notifications_total{outcome="submitted"} 1.0' in metrics
    # Only the drift alert was routed here: nothing was ignored or rejected.
    assert 'mlp_drift_retrain_notifications_total{outcome="ignored"} 0.0' in metrics
    assert 'mlp_drift_retrain_notifications_total{outcome="rejected"} 0.0' in metrics


def test_a_route_for_another_alert_delivers_nothing(processes: Processes, tmp_path: Path) -> None:
    config = yaml.safe_load(RENDERED.read_text(encoding="utf-8"))
    config["spec"]["route"]["matchers"][0]["value"] = "DriftMonitorSomethingElse"
    marker, monitor = _deliver(config, processes, tmp_path)
    time.sleep(8)  # several group waits
    assert not marker.is_file()
    with urllib.request.urlopen(f"{monitor}/metrics", timeout=5) as response:  # noqa: S310
        assert 'outcome="submitted"} 0.0' in response.read().decode()
