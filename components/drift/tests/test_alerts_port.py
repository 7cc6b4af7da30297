"""`--alerts-port`: POST /alerts (which starts retraining) on a listener of its own, so the
platform's NetworkPolicy can open it to Alertmanager alone; /log, /metrics and the probes stay
on `--port`, where the model server's payload logger and Prometheus connect."""

from __future__ import annotations

import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

from .test_retrain import FIRING
from .test_server import _post, _wait_for, monitor


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_alerts_arrive_only_on_the_alerts_port(
    cancer_files: dict[str, Path], tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    command = f"{sys.executable} -c \"open('{marker}', 'w').close()\""
    alerts_port = _free_port()
    args = ["--reference", str(cancer_files["reference"]), "--retrain", "local",
            "--retrain-command", command, "--retrain-cooldown", "0",
            "--alerts-port", str(alerts_port)]  # fmt: skip
    with monitor(tmp_path, *args) as base:
        alerts = f"http://127.0.0.1:{alerts_port}"
        # The main port no longer takes alerts; the model server's logger still posts /log.
        status, body = _post(base + "/alerts", FIRING)
        assert status == 404 and "POST /log on this port" in body, body
        assert _get(base + "/metrics") == 200
        # The alerts port takes alerts and nothing else (no /log, no /metrics).
        status, body = _post(alerts + "/log", b"{}")
        assert status == 404 and "POST /alerts on this port" in body, body
        assert _get(alerts + "/metrics") == 404
        assert _get(alerts + "/healthz") == 200
        status, body = _post(alerts + "/alerts", FIRING)
        assert status == 202, body
        _wait_for(marker.is_file, "the retraining command to run")
