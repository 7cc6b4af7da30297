"""Every serving and drift alert fires on its fault, through the real chain, and is quiet
without it.

The chain (see tests/e2e/alert_chain.py): platformgen renders a test copy of platform.yaml
(3s scrapes, 1s evaluation, 20s `for`, 20s rate windows, production thresholds); its
ServiceMonitors, PrometheusRules and Services are applied to a real control plane; the real
Prometheus Operator (v0.93.0) writes the Prometheus configuration and rule files for a
Prometheus object that selects them by the spec's `monitoring.selectorLabels`; the real
Prometheus (3.16.0) runs exactly that, discovering the targets through the API server
(EndpointSlices point at the real model server and drift monitor running as local processes
on this machine's address, there being no kubelet).

Faults are real causes, no hooks:
  - HighErrorRatio: clients send a category id the model never saw; its Embedding lookup
    fails and the server answers 500;
  - HighLatency: a slow (convolutional) model is promoted and hot-reloaded;
  - ModelStale: production is rolled back to a version registered 30 days ago;
  - FeatureDrift: the traffic's f1 shifts by four standard deviations; the drift monitor hears
    of it through its payload-logger endpoint and counts it per reference bin, and the recording
    rules turn those counters into PSI.

kube-state-metrics alerts (restarts, unavailable replicas, failed Jobs) cannot be driven
without a kubelet: tests/alerts/ proves them with promtool on series labelled as
kube-state-metrics and the operator's relabelling store them.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import support
from .alert_chain import (
    FEATURES,
    MODEL,
    PROMETHEUS_NAMESPACE,
    OperatorOutput,
    Processes,
    PrometheusAPI,
    Traffic,
    chain_spec,
    free_port,
    host_address,
    http_ok,
    localize,
    operator_output,
    prometheus_object,
    render,
    traffic_mode,
)
from .derived import derived_workloads
from .kube import (
    CONTROL_PLANE,
    CRDS_DIR,
    ROOT,
    TOOLS_BIN,
    Cluster,
    Manifest,
    apply,
    control_plane,
    install_crds,
    load_documents,
    wait_until,
)

pytestmark = pytest.mark.tools

CHAIN_TOOLS = (*CONTROL_PLANE, "kustomize", "prometheus", "prometheus-operator")
PYTHON = ROOT / ".venv" / "bin" / "python"
STARTUP_TIMEOUT = 900.0
"""TensorFlow imports slowly on a busy 2-core machine: the model server may take minutes."""
FIRE_TIMEOUT = 180.0
QUIET_SECONDS = 45
"""Longer than the test copy's `for` (20s) plus one rate window (20s)."""
CLEAR_TIMEOUT = 180.0


@dataclass
class Chain:
    cluster: Cluster
    prometheus: PrometheusAPI
    traffic: Traffic
    processes: Processes
    registry: Path
    versions: dict[str, int]
    rules: dict[str, str]
    """Alert name -> expression, as rendered for the test copy of the spec."""
    address: str
    ports: dict[str, int]
    pods: dict[str, str]
    """Component -> the Pod its Service's EndpointSlice names."""
    services: dict[str, str]
    """Component -> the name of the Service Prometheus scrapes it through: the `service` and
    `job` labels it stores (`model-server-metrics` for a Knative InferenceService)."""

    def promote(self, version: str) -> None:
        from mlp_common.registry import ModelRegistry

        ModelRegistry(self.registry).promote(MODEL, self.versions[version], reason="alert chain")

    def served_version(self) -> int | None:
        service = self.services["model-server"]
        found = self.prometheus.query(f'mlp_model_version{{service="{service}"}}')
        return int(float(found[0]["value"][1])) if found else None


# -- the chain, once per module ----------------------------------------------------------------


def _write_reference(path: Path) -> None:
    """The drift reference: the training data's feature distribution (f0 a category id)."""
    import random

    rng = random.Random(1)
    lines = [",".join([*FEATURES, "label"])]
    for _ in range(2000):
        row = [rng.randrange(10), *(round(rng.gauss(0.0, 1.0), 4) for _ in FEATURES[1:])]
        lines.append(",".join(str(v) for v in [*row, rng.choice("abc")]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _install_monitoring_crds(cluster: Cluster, documents: list[Manifest]) -> None:
    """Every monitoring.coreos.com CRD (the operator watches them all), then whatever else the
    rendered objects need (KServe's InferenceService)."""
    crds = [
        {k: v for k, v in doc.items() if k != "status"}
        for path in sorted((CRDS_DIR / "prometheus-operator").glob("*.yaml"))
        for doc in load_documents(path.read_text(encoding="utf-8"))
        if doc.get("kind") == "CustomResourceDefinition"
    ]
    assert crds, "no prometheus-operator CRDs under .tools/crds: run `make tools`"
    cluster.kubectl(
        "apply", "--server-side", "--field-manager=e2e-crds", "-f", "-",
        stdin=yaml.safe_dump_all(crds, sort_keys=False),
    )  # fmt: skip
    names = [crd["metadata"]["name"] for crd in crds]
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=120s", *(f"crd/{n}" for n in names)
    )
    install_crds(cluster, documents)


def _pods_of(cluster: Cluster, namespace: str, selector: dict[str, str]) -> list[str]:
    labels = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    items = cluster.get_json("pods", "-n", namespace, "-l", labels)["items"]
    return sorted(p["metadata"]["name"] for p in items)


def _endpoint_slice(service: Manifest, pod: str, address: str, port: int) -> Manifest:
    """What the EndpointSlice controller writes for a ready Pod, at <address>:<port>."""
    meta = service["metadata"]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{meta['name']}-local",
            "namespace": meta["namespace"],
            "labels": {
                "kubernetes.io/service-name": meta["name"],
                "endpointslice.kubernetes.io/managed-by": "e2e.platformgen.io",
            },
        },
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": [address],
                "conditions": {"ready": True, "serving": True, "terminating": False},
                "targetRef": {"kind": "Pod", "namespace": meta["namespace"], "name": pod},
            }
        ],
        "ports": [
            {"name": p["name"], "port": port, "protocol": p.get("protocol", "TCP")}
            for p in service["spec"]["ports"]
        ],
    }


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    support.require_tools(*CHAIN_TOOLS, install="make tools cluster-tools prometheus-tools")
    address = host_address()
    if address is None:
        support.unavailable("no non-loopback IPv4 address for the EndpointSlices to point at")
    work = tmp_path_factory.mktemp("alert-chain")
    processes = Processes(logs=work / "logs")
    registry = work / "registry"
    # TensorFlow is slow to start: build the models while the control plane comes up.
    models = subprocess.Popen(
        [str(PYTHON), str(Path(__file__).with_name("alert_chain_models.py")), str(registry)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    spec = chain_spec(yaml.safe_load((ROOT / "platform.yaml").read_text(encoding="utf-8")))
    documents = load_documents(render(spec, work / "spec"))
    rules = {
        rule["alert"]: rule["expr"]
        for doc in documents
        if doc["kind"] == "PrometheusRule"
        for group in doc["spec"]["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    services = {  # component -> its Service, which its ServiceMonitor selects by these labels
        doc["metadata"]["labels"]["app.kubernetes.io/name"]: doc
        for doc in documents
        if doc["kind"] == "Service"
        and doc["metadata"]["labels"].get("app.kubernetes.io/name") in spec["components"]
    }
    assert set(services) == {"model-server", "drift-monitor"}, sorted(services)
    try:
        with control_plane(work / "cluster") as cluster:
            _install_monitoring_crds(cluster, documents)
            cluster.kubectl("create", "namespace", PROMETHEUS_NAMESPACE)
            apply(cluster, yaml.safe_dump_all(documents, sort_keys=False), applyset=None)
            derived = [w for doc in documents for w in derived_workloads(doc)]
            apply(cluster, yaml.safe_dump_all(derived, sort_keys=False), applyset=None)

            pki = cluster.state / "pki"
            server = yaml.safe_load(cluster.kubeconfig.read_text())["clusters"][0]["cluster"]
            processes.start(
                "prometheus-operator",
                [
                    str(TOOLS_BIN / "prometheus-operator"),
                    f"--apiserver={server['server']}",
                    f"--ca-file={pki / 'ca.crt'}",
                    f"--cert-file={pki / 'admin.crt'}",
                    f"--key-file={pki / 'admin.key'}",
                    f"--web.listen-address=127.0.0.1:{free_port()}",
                    "--log-level=info",
                ],
            )
            selector = spec["monitoring"]["selectorLabels"]
            apply(
                cluster,
                yaml.safe_dump(prometheus_object(selector), sort_keys=False),
                applyset=None,
            )

            out, err = models.communicate(timeout=STARTUP_TIMEOUT)
            assert models.returncode == 0, f"alert_chain_models.py failed:\n{err[-3000:]}"
            versions: dict[str, int] = json.loads(out.strip().splitlines()[-1])
            reference = work / "reference.csv"
            _write_reference(reference)
            ports = {"model-server": free_port(address), "drift-monitor": free_port(address)}
            processes.start(
                "model-server",
                [
                    str(PYTHON), "-m", "mlp_serve", "--registry", str(registry),
                    "--model", MODEL, "--version", "production", "--host", address,
                    "--port", str(ports["model-server"]), "--poll-interval", "1",
                ],
                # One TensorFlow thread: the slow model must not starve /metrics (or anything
                # else on a shared machine) while it computes.
                env={"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
                     "OMP_NUM_THREADS": "1"},
            )  # fmt: skip
            processes.start(
                "drift-monitor",
                [
                    str(PYTHON), "-m", "mlp_drift", "serve", "--reference", str(reference),
                    "--target", "label", "--host", address,
                    "--port", str(ports["drift-monitor"]), "--interval", "1",
                ],
            )  # fmt: skip

            # The Pods the controllers created from our workloads: the EndpointSlices name them.
            pods: dict[str, str] = {}

            def pods_created() -> str | None:
                for name, service in services.items():
                    found = _pods_of(
                        cluster, service["metadata"]["namespace"], service["spec"]["selector"]
                    )
                    if not found:
                        return f"no Pod selected by Service {name} yet"
                    pods[name] = found[0]
                return None

            cluster.wait_for("Pods of every scraped Service", pods_created, timeout=120)
            slices = [_endpoint_slice(services[n], pods[n], address, ports[n]) for n in services]
            apply(cluster, yaml.safe_dump_all(slices, sort_keys=False), applyset=None)

            generated: list[OperatorOutput] = []

            def operator_wrote() -> str | None:
                alive = processes.check_alive("prometheus-operator")
                if alive:
                    raise AssertionError(alive)
                output = operator_output(cluster)
                if output is None or not output.rule_files:
                    return "no config Secret / rule ConfigMap yet"
                generated[:] = [output]
                return None

            wait_until("the operator's Prometheus configuration", operator_wrote, timeout=180)
            config_path = localize(generated[0], cluster.kubeconfig, work / "prometheus-root")
            api_port = free_port()
            processes.start(
                "prometheus",
                [
                    str(TOOLS_BIN / "prometheus"),
                    f"--config.file={config_path}",
                    f"--storage.tsdb.path={work / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{api_port}",
                    "--log.level=info",
                ],
            )
            base = f"http://127.0.0.1:{api_port}"

            def ready(name: str, url: str) -> Callable[[], str | None]:
                def check() -> str | None:
                    alive = processes.check_alive(name)
                    if alive:
                        raise AssertionError(alive)
                    return http_ok(url)

                return check

            wait_until("Prometheus ready", ready("prometheus", f"{base}/-/ready"), timeout=120)
            model_url = f"http://{address}:{ports['model-server']}"
            drift_url = f"http://{address}:{ports['drift-monitor']}"
            wait_until(
                "the model server",
                ready("model-server", f"{model_url}/v2/health/ready"),
                timeout=STARTUP_TIMEOUT,
            )
            wait_until(
                "the drift monitor", ready("drift-monitor", f"{drift_url}/healthz"), timeout=120
            )
            traffic = Traffic(model_url, drift_url)
            traffic.start()
            try:
                yield Chain(
                    cluster=cluster,
                    prometheus=PrometheusAPI(base),
                    traffic=traffic,
                    processes=processes,
                    registry=registry,
                    versions=versions,
                    rules=rules,
                    address=address,
                    ports=ports,
                    pods=pods,
                    services={n: s["metadata"]["name"] for n, s in services.items()},
                )
            finally:
                traffic.stop()
                processes.stop_all()  # before the control plane goes: no reconnect noise
    finally:
        if models.poll() is None:
            models.kill()
            models.wait()
        processes.stop_all()
        for name in ("prometheus-operator", "prometheus", "model-server", "drift-monitor"):
            tail = "\n".join(line[:300] for line in processes.log(name, lines=8).splitlines())
            if tail:
                print(f"--- {name} (tail)\n{tail}")


# -- faults ------------------------------------------------------------------------------------


@contextlib.contextmanager
def serve_version(chain: Chain, version: str) -> Iterator[None]:
    """Promote `version` and wait until the model server hot-reloaded it; restore afterwards."""

    def switch(to: str) -> None:
        chain.promote(to)
        wanted = chain.versions[to]

        def reloaded() -> str | None:
            served = chain.served_version()
            return None if served == wanted else f"serving {served}, want {wanted}"

        wait_until(f"the model server to serve version {wanted}", reloaded, timeout=120)

    switch(version)
    try:
        yield
    finally:
        switch("current")


Fault = Callable[[Chain], contextlib.AbstractContextManager[None]]
FAULTS: dict[str, Fault] = {
    "HighErrorRatio": lambda chain: traffic_mode(chain.traffic, "unseen-category"),
    "HighLatency": lambda chain: serve_version(chain, "slow"),
    "ModelStale": lambda chain: serve_version(chain, "old"),
    "FeatureDrift": lambda chain: traffic_mode(chain.traffic, "shifted"),
}
"""Alert-name suffix -> its fault. tests/alerts/test_alert_coverage.py reads this."""


def _chain_alerts(chain: Chain) -> dict[str, str]:
    """Rendered alert name -> fault suffix, for the alerts this module proves."""
    found = {}
    for alert in chain.rules:
        for suffix in FAULTS:
            if alert.endswith(suffix):
                found[alert] = suffix
    return found


def _signal(expr: str) -> str:
    """An alert's expression without its final threshold comparison: what it measures."""
    head, sep, _ = expr.rpartition(">")
    assert sep, f"no '>' threshold in {expr!r}"
    return head.strip()


# -- tests -------------------------------------------------------------------------------------


def test_targets_are_up_with_the_operators_labels(chain: Chain) -> None:
    """Prometheus discovered our Services through the API server and scrapes them, with the
    target labels the operator's relabelling sets (job, namespace, service, pod, endpoint)."""
    want = {}
    for component, port_name in (("model-server", "http"), ("drift-monitor", "metrics")):
        service = chain.services[component]
        want[service] = {
            "job": service,
            "namespace": "ml-serving",
            "service": service,
            "pod": chain.pods[component],
            "endpoint": port_name,
            "instance": f"{chain.address}:{chain.ports[component]}",
        }

    def all_up() -> str | None:
        targets = {t["labels"].get("service"): t for t in chain.prometheus.targets()}
        for service, labels in want.items():
            target = targets.get(service)
            if target is None:
                return f"no target for {service}; have {sorted(k for k in targets if k)}"
            if target["health"] != "up":
                return f"{service}: {target['health']} {target.get('lastError', '')}"
            wrong = {
                k: target["labels"].get(k)
                for k, v in labels.items()
                if target["labels"].get(k) != v
            }
            if wrong:
                return f"{service}: labels {wrong}, want {labels}"
        return None

    wait_until("every target up with the operator's labels", all_up, timeout=120)
    pool = {t["labels"]["service"]: t["scrapePool"] for t in chain.prometheus.targets()}
    assert pool[chain.services["model-server"]] == "serviceMonitor/ml-serving/model-server/0"


def test_the_application_endpoint_label_is_stored_as_exported_endpoint(chain: Chain) -> None:
    """The fact the serving rules depend on: `endpoint` is the port name, and the model
    server's own `endpoint` label survives only as `exported_endpoint`."""

    requests = f'mlp_requests_total{{service="{chain.services["model-server"]}"}}'

    def stored() -> str | None:
        series = chain.prometheus.query(requests)
        inference = [s for s in series if s["metric"].get("exported_endpoint") == "v1_predict"]
        if not inference:
            return f"no v1_predict series yet: {[s['metric'] for s in series][:3]}"
        return None

    wait_until("stored request counters", stored, timeout=120)
    for s in chain.prometheus.query(requests):
        assert s["metric"]["endpoint"] == "http", s["metric"]


def test_quiet_under_clean_traffic(chain: Chain) -> None:
    """Under clean traffic every chain-proven alert's signal has data (so it is not quiet
    because it matches nothing) and none fires for longer than `for` plus a rate window."""
    alerts = _chain_alerts(chain)
    assert set(alerts.values()) == set(FAULTS), f"rendered {sorted(chain.rules)}"

    def signals_present() -> str | None:
        empty = [a for a in alerts if not chain.prometheus.query(_signal(chain.rules[a]))]
        if empty:
            return "no series for " + ", ".join(
                f"{a} ({_signal(chain.rules[a])})" for a in sorted(empty)
            )
        return None

    wait_until("every alert's signal to have data", signals_present, timeout=120)

    def firing() -> dict[str, str | None]:
        states = chain.prometheus.alert_states()
        return {a: states.get(a) for a in alerts if states.get(a) == "firing"}

    # Start-up transients (first scrapes, the model load) settle; then for QUIET_SECONDS,
    # longer than `for` plus the rate window, no alert may fire. (Pending is allowed: one
    # request stalled by a busy machine may lift the p99 for a moment; that is what `for` is
    # there to absorb.)
    wait_until("no alert firing", lambda: f"firing: {firing()}" if firing() else None, 120)
    pending: set[str] = set()
    deadline = time.monotonic() + QUIET_SECONDS
    while time.monotonic() < deadline:
        states = chain.prometheus.alert_states()
        active = {a: states.get(a) for a in alerts if states.get(a) != "inactive"}
        assert "firing" not in active.values(), f"alerts firing under clean traffic: {active}"
        pending |= set(active)
        time.sleep(1.0)
    values = {a: chain.prometheus.query(_signal(chain.rules[a]))[0]["value"][1] for a in alerts}
    print(
        f"clean traffic for {QUIET_SECONDS}s: signals {values}, pending at some point "
        f"{sorted(pending) or 'none'}, responses so far {chain.traffic.codes}"
    )


@pytest.mark.parametrize("suffix", list(FAULTS))
def test_alert_fires_on_its_fault_and_clears(chain: Chain, suffix: str) -> None:
    alert = next(a for a, s in _chain_alerts(chain).items() if s == suffix)

    def state_is(*wanted: str) -> Callable[[], str | None]:
        def check() -> str | None:
            state = chain.prometheus.alert_states().get(alert, "missing")
            return None if state in wanted else f"{alert} is {state}"

        return check

    not_firing = state_is("inactive", "pending")
    wait_until(f"{alert} not firing before its fault", not_firing, timeout=CLEAR_TIMEOUT)
    with FAULTS[suffix](chain):
        try:
            wait_until(f"{alert} to fire", state_is("firing"), timeout=FIRE_TIMEOUT)
        except AssertionError as exc:
            signal = chain.prometheus.query(_signal(chain.rules[alert]))
            up = [(s["metric"]["service"], s["value"][1]) for s in chain.prometheus.query("up")]
            raise AssertionError(
                f"{alert} did not fire on its fault: {exc}\n  expr: {chain.rules[alert]}\n"
                f"  signal now: {[s['value'][1] for s in signal] or 'no series'}\n"
                f"  responses: {chain.traffic.codes}\n"
                f"  up: {up}"
                f", scrapes failed in the last 5m: "
                f"{chain.prometheus.query('count_over_time((up == 0)[5m:1s])') or 'none'}"
            ) from None
        assert alert in chain.prometheus.firing(), f'{alert} not in ALERTS{{alertstate="firing"}}'
    wait_until(f"{alert} to clear after its fault", not_firing, timeout=CLEAR_TIMEOUT)
