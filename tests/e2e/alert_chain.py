"""The real alert chain for tests/e2e/test_alert_chain.py: helpers that start and talk to it.

    platform.yaml (a test copy: 3s scrapes, 1s rule evaluation, 20s `for`, 20s rate windows;
    production thresholds)
      -> platformgen render -> kubectl apply (ServiceMonitors, PrometheusRules, Services, ...)
      -> the Prometheus Operator (v0.93.0) writes Prometheus' config Secret and rule ConfigMap
      -> the real Prometheus (3.16.0) runs that configuration, discovering targets through the
         kube-apiserver, scraping the real model server and drift monitor
      -> ALERTS / the rules API.

Only three things stand in for a cluster's data plane, because there is no kubelet:
  - Pods exist (created by the controller manager from our rendered Deployment and the
    Deployment KServe would derive from the InferenceService) but never run; the components
    run as local processes instead;
  - EndpointSlices for our Services point at those processes, with `targetRef` naming a real
    Pod, as the EndpointSlice controller would write them for a ready Pod. The API server
    refuses loopback addresses in EndpointSlices, so the processes listen on this machine's
    own non-loopback IPv4 address (`host_address`), which stands for the Pod IP;
  - the operator's configuration is used as the config-reloader sidecar would: decompressed,
    `$(POD_NAME)` expanded, and the files it mounts (rule ConfigMaps) placed under a local
    root. The only change to the configuration itself is how Prometheus reaches the API
    server: `kubeconfig_file` in each `kubernetes_sd_configs` entry, where a pod would use
    its service-account credentials.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import gzip
import json
import os
import random
import re
import signal
import socket
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .kube import ROOT, TOOLS_BIN, Cluster, Manifest

PROMETHEUS_NAME = "mlp-e2e"
PROMETHEUS_VERSION = "v3.16.0"
"""What scripts/install-prometheus.sh builds: the operator generates configuration for it."""
PROMETHEUS_NAMESPACE = "monitoring"
VARIABLE = re.compile(r"\$\(\w+\)")
"""`$(NAME)`: expanded by the config-reloader from its environment."""
CONFIG_ROOT = "/etc/prometheus/"
"""Where the operator's StatefulSet mounts config and rule files; mapped to a local folder."""
SCRAPE_INTERVAL = "3s"
"""Also the scrape timeout: 1s and 2s timed out often on a busy 2-core machine, and a failed
scrape marks every series of the target stale, which resets a pending alert."""
WINDOW = "20s"
"""Rate window of the test copy: six or seven scrapes, so a missed one never empties it."""
DRIFT_WINDOW = "60s"
"""Drift window of the test copy: a few hundred rows of the test traffic, so the clean stream's
PSI (biased upwards by about (bins - 1) / rows) stays well under the threshold."""
DRIFT_MIN_SAMPLES = 100
"""Production asks 200 rows an hour; the test window is a minute."""
FOR = "20s"
"""As long as WINDOW: one request stalled by a busy machine lifts the p99 for one window at
most, which is barely enough to fire; a slow model lifts it for as long as it serves."""
FEATURES = ("f0", "f1", "f2", "f3")
CATEGORIES = 10
"""f0 is a category id in [0, CATEGORIES); the model looks it up in an Embedding."""
MODEL = "chain"


# -- the test copy of the spec ----------------------------------------------------------------


def chain_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """platform.yaml reduced to the components Prometheus scrapes, with timings in seconds.

    Thresholds stay as production has them: only how often and over how long changes."""
    copy: dict[str, Any] = json.loads(json.dumps(spec))
    scraped = {name for name, c in copy["components"].items() if c.get("metrics")}
    copy["components"] = {n: c for n, c in copy["components"].items() if n in scraped}
    copy.pop("pipelines", None)
    for component in copy["components"].values():
        component.pop("pipeline", None)  # the pipeline it retrains goes with the pipelines
    for environment in copy.get("environments", {}).values():
        environment.pop("pipelines", None)  # per-environment step pins go with the pipelines
    for env in copy.get("environments", {}).values():
        for key in ("components", "images"):
            if key in env:
                env[key] = {n: v for n, v in env[key].items() if n in scraped}
    copy["monitoring"]["evaluationInterval"] = "1s"
    for component in copy["components"].values():
        component["metrics"]["interval"] = SCRAPE_INTERVAL
        alerts = component.get("alerts")
        if alerts is None:
            continue
        alerts["for"] = FOR
        alerts["window"] = WINDOW
        if "driftPsi" in alerts:
            alerts["driftWindow"] = DRIFT_WINDOW
            alerts["driftMinSamples"] = DRIFT_MIN_SAMPLES
    return copy


def render(spec: dict[str, Any], folder: Path) -> str:
    """Render `spec` with platformgen into `folder` and return `kustomize build base/`."""
    folder.mkdir(parents=True, exist_ok=True)
    spec_path = folder / "platform.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "platformgen"), "render", "--spec", str(spec_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"platformgen render failed:\n{result.stderr}"
    built = subprocess.run(
        [str(TOOLS_BIN / "kustomize"), "build", str(folder / "base")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, f"kustomize build failed:\n{built.stderr}"
    return built.stdout


def prometheus_object(selector_labels: dict[str, str]) -> Manifest:
    """A Prometheus that selects ServiceMonitors and PrometheusRules in every namespace by the
    spec's `monitoring.selectorLabels`, as kube-prometheus-stack's does by `release`."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Prometheus",
        "metadata": {"name": PROMETHEUS_NAME, "namespace": PROMETHEUS_NAMESPACE},
        "spec": {
            "version": PROMETHEUS_VERSION,
            "replicas": 1,
            "scrapeInterval": "1s",
            "evaluationInterval": "1s",
            "serviceDiscoveryRole": "EndpointSlice",
            "serviceMonitorSelector": {"matchLabels": selector_labels},
            "serviceMonitorNamespaceSelector": {},
            "ruleSelector": {"matchLabels": selector_labels},
            "ruleNamespaceSelector": {},
            "podMonitorSelector": {"matchLabels": selector_labels},
            "probeSelector": {"matchLabels": selector_labels},
            "scrapeConfigSelector": {"matchLabels": selector_labels},
        },
    }


# -- the operator's output, used as the config-reloader would ---------------------------------


@dataclass(frozen=True)
class OperatorOutput:
    config: dict[str, Any]
    """prometheus.yaml from the Secret the operator writes (decompressed)."""
    rule_files: dict[str, str]
    """Path as mounted in the Prometheus pod -> content, from the rule ConfigMaps."""
    reloader_env: dict[str, str]
    """The config-reloader container's environment in the operator's StatefulSet (pod 0)."""


def operator_output(cluster: Cluster) -> OperatorOutput | None:
    """What the operator has written for our Prometheus, or None if not yet."""
    secret = cluster.kubectl(
        "get", "secret", f"prometheus-{PROMETHEUS_NAME}", "-n", PROMETHEUS_NAMESPACE,
        "-o", "json", check=False,
    )  # fmt: skip
    statefulset = cluster.kubectl(
        "get", "statefulset", f"prometheus-{PROMETHEUS_NAME}", "-n", PROMETHEUS_NAMESPACE,
        "-o", "json", check=False,
    )  # fmt: skip
    if secret.returncode != 0 or statefulset.returncode != 0:
        return None
    data = json.loads(secret.stdout).get("data", {})
    if "prometheus.yaml.gz" not in data:
        return None
    config = yaml.safe_load(gzip.decompress(base64.b64decode(data["prometheus.yaml.gz"])))
    maps = cluster.get_json(
        "configmap", "-n", PROMETHEUS_NAMESPACE, "-l", f"prometheus-name={PROMETHEUS_NAME}"
    )["items"]
    rule_files = {
        f"{CONFIG_ROOT}rules/{cm['metadata']['name']}/{key}": value
        for cm in maps
        if cm["metadata"]["name"].startswith(f"prometheus-{PROMETHEUS_NAME}-rulefiles-")
        for key, value in cm.get("data", {}).items()
    }
    pod = {"metadata.name": f"prometheus-{PROMETHEUS_NAME}-0"}
    containers = json.loads(statefulset.stdout)["spec"]["template"]["spec"]["containers"]
    reloader = next(c for c in containers if c["name"] == "config-reloader")
    env = {
        e["name"]: e["value"] if "value" in e else pod[e["valueFrom"]["fieldRef"]["fieldPath"]]
        for e in reloader.get("env", [])
    }
    return OperatorOutput(config=config, rule_files=rule_files, reloader_env=env)


def localize(output: OperatorOutput, kubeconfig: Path, root: Path) -> Path:
    """Write the operator's configuration for a local Prometheus; return the config path.

    As the config-reloader does: `$(VAR)` is expanded from its environment in the StatefulSet
    (POD_NAME, SHARD) and the mounted files are placed (under `root` instead of /). Then the
    one change: each Kubernetes service discovery gets `kubeconfig_file` instead of the
    in-cluster service account."""
    text = yaml.safe_dump(output.config, sort_keys=False)
    for name, value in output.reloader_env.items():
        text = text.replace(f"$({name})", value)
    unexpanded = sorted(set(VARIABLE.findall(text)))
    assert not unexpanded, f"variables the config-reloader's environment lacks: {unexpanded}"
    config = yaml.safe_load(text)
    for job in config.get("scrape_configs", []):
        for sd in job.get("kubernetes_sd_configs", []):
            assert "api_server" not in sd, f"{job['job_name']}: operator set api_server: {sd}"
            sd["kubeconfig_file"] = str(kubeconfig)
    config["rule_files"] = [
        str(root / pattern.removeprefix("/")) for pattern in config.get("rule_files", [])
    ]
    for mounted, content in output.rule_files.items():
        path = root / mounted.removeprefix("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    path = root / "prometheus.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


# -- processes ---------------------------------------------------------------------------------


def host_address() -> str | None:
    """This machine's first IPv4 address that an EndpointSlice may hold (not loopback, not
    link-local), or None."""
    import ipaddress

    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=False).stdout
    for word in out.split():
        try:
            ip = ipaddress.ip_address(word)
        except ValueError:
            continue
        if ip.version == 4 and not (ip.is_loopback or ip.is_link_local or ip.is_multicast):
            return word
    return None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the child: get SIGTERM when pytest dies, so nothing outlives a killed session."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Processes:
    """Child processes with logs in `logs/`, stopped by PID (TERM, then KILL)."""

    logs: Path
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("wb") as log:
            self.running[name] = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                preexec_fn=_die_with_parent,  # noqa: PLW1509 (no threads started yet)
            )

    def log(self, name: str, lines: int = 30) -> str:
        path = self.logs / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self, name: str) -> str | None:
        process = self.running[name]
        if process.poll() is None:
            return None
        return f"{name} exited with {process.returncode}:\n{self.log(name)}"

    def stop(self, name: str) -> None:
        process = self.running.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)

    def stop_all(self) -> None:
        for name in reversed(list(self.running)):
            self.stop(name)


def http_json(url: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **(headers or {})}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (local URL)
        return json.loads(response.read() or b"null")


def http_ok(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (local URL)
            return None if response.status == 200 else f"HTTP {response.status}"
    except (urllib.error.URLError, OSError) as exc:
        return str(exc)


# -- Prometheus' HTTP API ---------------------------------------------------------------------


@dataclass(frozen=True)
class PrometheusAPI:
    base: str

    def _get(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        document = http_json(f"{self.base}{path}?{query}")
        assert document["status"] == "success", document
        return document["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get("/api/v1/query", query=expr)["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = self._get("/api/v1/targets", state="active")["activeTargets"]
        return active

    def rules(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self._get("/api/v1/rules")["groups"]
        return groups

    def alert_states(self) -> dict[str, str]:
        """Alert name -> state from the rules API ('inactive', 'pending' or 'firing')."""
        return {
            rule["name"]: rule["state"]
            for group in self.rules()
            for rule in group["rules"]
            if rule["type"] == "alerting"
        }

    def firing(self) -> set[str]:
        """Alert names with an ALERTS{alertstate="firing"} series right now."""
        return {s["metric"]["alertname"] for s in self.query('ALERTS{alertstate="firing"}')}


# -- traffic -----------------------------------------------------------------------------------


def clean_row(rng: random.Random) -> list[float]:
    return [float(rng.randrange(CATEGORIES)), *(rng.gauss(0.0, 1.0) for _ in FEATURES[1:])]


TRAFFIC_MODES: dict[str, Callable[[random.Random], list[float]]] = {
    "clean": clean_row,
    # A category id the model never saw: its Embedding lookup fails, the server answers 500.
    "unseen-category": lambda rng: [float(CATEGORIES + 47), *clean_row(rng)[1:]],
    # f1 shifted by four standard deviations: the drift monitor's PSI for f1 goes far up.
    "shifted": lambda rng: [clean_row(rng)[0], rng.gauss(4.0, 1.0), *clean_row(rng)[2:]],
}


class Traffic:
    """Clients of the model server, one request at a time: each v1 predict request is also
    sent to the drift monitor's /log as KServe's payload logger would (a CloudEvent of type
    org.kubeflow.serving.inference.request whose body is the request)."""

    def __init__(self, model_url: str, drift_url: str, rows: int = 2) -> None:
        self.model_url = model_url
        self.drift_url = drift_url
        self.rows = rows
        self.mode = "clean"
        self.codes: dict[int, int] = {}
        self._rng = random.Random(42)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            make_row = TRAFFIC_MODES[self.mode]
            body = {"instances": [make_row(self._rng) for _ in range(self.rows)]}
            code = self._send(f"{self.model_url}/v1/models/{MODEL}:predict", body, {})
            self.codes[code] = self.codes.get(code, 0) + 1
            self._send(
                f"{self.drift_url}/log",
                body,
                {
                    "Ce-Type": "org.kubeflow.serving.inference.request",
                    "Ce-Source": "http://localhost:9081/",
                    "Ce-Id": str(self._rng.getrandbits(64)),
                    "Ce-Specversion": "1.0",
                },
            )
            self._stop.wait(0.2)

    @staticmethod
    def _send(url: str, body: Any, headers: dict[str, str]) -> int:
        request = urllib.request.Request(
            url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except (urllib.error.URLError, OSError):
            return 0


@contextlib.contextmanager
def traffic_mode(traffic: Traffic, mode: str) -> Iterator[None]:
    traffic.mode = mode
    try:
        yield
    finally:
        traffic.mode = "clean"
