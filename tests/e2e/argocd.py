"""A real Argo CD (v3.5.1, built from the module proxy by scripts/install-argocd.sh) on loopback.

`ArgoCD` runs Redis, the repo-server, the application controller and the ApplicationSet
controller as local processes against a control plane from `scripts/cluster.sh`, and a
`GitRepo` is the file:// repository they read. Processes are stopped by PID.

What a real install has that this one does not, and why it does not matter here:
- no argocd-server (API/UI) and no Dex: syncs are started through the Application's
  `operation` field, which is what the API server writes too;
- no TLS between the components (repo-server `--disable-tls`, controllers
  `--repo-server-plaintext`): all of it is on 127.0.0.1;
- no in-cluster service account: `ARGOCD_FAKE_IN_CLUSTER=true` makes the controllers treat the
  kubeconfig's cluster as `https://kubernetes.default.svc`.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .kube import PLATFORMGEN, ROOT, TOOLS_BIN, Cluster, install_crds, stop_process_groups

ARGOCD_COMPONENTS = (
    "argocd-repo-server",
    "argocd-application-controller",
    "argocd-applicationset-controller",
)
ARGOCD_TOOLS = (*ARGOCD_COMPONENTS, "argocd", "redis-server", "kustomize", "helm", "kubectl")
HACK_DIR = ROOT / ".tools" / "argocd-hack"
HACK_WRAPPERS = ("git-verify-wrapper.sh", "gpg-wrapper.sh")
NAMESPACE = "argocd"
ARGOCD_KINDS = ("Application", "ApplicationSet", "AppProject")
PART_OF_ARGOCD = {"app.kubernetes.io/part-of": "argocd"}
REFRESH = "argocd.argoproj.io/refresh"


def render_spec(repo: Path, spec: dict[str, Any]) -> None:
    """Write ``spec`` (a changed copy of platform.yaml) and its compiled pipelines into ``repo``
    and render it there, as a user's commit would."""
    for pipeline in spec.get("pipelines", {}).values():
        target = repo / pipeline["compiled"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((ROOT / pipeline["compiled"]).read_bytes())
    (repo / "platform.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    result = subprocess.run(
        [str(PLATFORMGEN), "render", "--spec", str(repo / "platform.yaml"), "--out", str(repo)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"platformgen render failed:\n{result.stderr}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class GitRepo:
    """A local Git repository served to Argo CD as file://<path>."""

    path: Path

    @property
    def url(self) -> str:
        return f"file://{self.path}"

    def git(self, *args: str) -> str:
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "e2e",
            "GIT_AUTHOR_EMAIL": "e2e@example.invalid",
            "GIT_COMMITTER_NAME": "e2e",
            "GIT_COMMITTER_EMAIL": "e2e@example.invalid",
        }
        result = subprocess.run(
            ["git", "-C", str(self.path), *args], capture_output=True, text=True, env=env
        )
        assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
        return result.stdout.strip()

    def init(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.git("init", "--quiet", "--initial-branch=main")

    def commit(self, message: str) -> str:
        """Commit everything; return the new revision."""
        self.git("add", "--all")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")


@dataclass
class ArgoCD:
    """Redis + repo-server + application controller + ApplicationSet controller."""

    cluster: Cluster
    state: Path
    settings: list[dict[str, Any]] = field(default_factory=list)
    """Settings applied over the empty ones before the controllers start (the rendered
    argocd-cm with the platform's Lua health checks, say)."""
    persist_resource_health: bool = False
    """Write each object's health into its Application's `status.resources[].health`. Argo CD
    3.x keeps it in Redis only by default (`controller.resource.health.persist`, upgrading/
    2.14-3.0.md); the Application's own `status.health` is written either way. The same
    computation, only stored where a test can read it."""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def _start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        with (self.state / f"{name}.log").open("wb") as log:  # the child keeps its own fd
            self.processes[name] = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )

    def log_tail(self, lines: int = 25) -> str:
        return "".join(
            f"\n--- {log.name} (tail)\n" + "\n".join(log.read_text().splitlines()[-lines:])
            for log in sorted(self.state.glob("*.log"))
        )

    def start(self, attempts: int = 3) -> None:
        """Install, then start the components and wait until each one listens. A port picked
        free can be taken by another process before the component binds it (the tests run
        side by side): a component that exits on `address already in use` is retried on new
        ports, everything else fails at once."""
        self.state.mkdir(parents=True, exist_ok=True)
        self.install()
        for attempt in range(1, attempts + 1):
            listeners = self._launch()
            try:
                for name, port in listeners.items():
                    self._wait_listening(port, name)
                return
            except AssertionError as error:
                if "address already in use" not in str(error) or attempt == attempts:
                    raise
                self.stop()

    def _launch(self) -> dict[str, int]:
        """Start every component on free ports; the port each one listens on, by name."""
        redis, repo, metrics = free_port(), free_port(), [free_port() for _ in range(4)]
        base_env = {
            "HOME": str(self.state),
            "TMPDIR": str(self.state),
            "KUBECONFIG": str(self.cluster.kubeconfig),
            "ARGOCD_FAKE_IN_CLUSTER": "true",
        }
        self._start(
            "redis-server",
            [
                str(TOOLS_BIN / "redis-server"),
                "--bind",
                "127.0.0.1",
                "--port",
                str(redis),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.state),
            ],
            {"PATH": os.environ["PATH"]},
        )
        # The repo-server runs git, kustomize and helm from PATH: ours first, then the
        # commit-signature wrappers v3.5.1 always calls, then the system's git.
        repo_path = os.pathsep.join([str(TOOLS_BIN), str(HACK_DIR), "/usr/bin", "/bin"])
        self._start(
            "argocd-repo-server",
            [
                str(TOOLS_BIN / "argocd-repo-server"),
                "--disable-tls",
                "--client-ca-path",
                "",
                "--address",
                "127.0.0.1",
                "--port",
                str(repo),
                "--metrics-address",
                "127.0.0.1",
                "--metrics-port",
                str(metrics[0]),
                "--redis",
                f"127.0.0.1:{redis}",
                "--loglevel",
                "info",
                "--logformat",
                "text",
            ],
            {**base_env, "PATH": repo_path, "ARGOCD_GPG_ENABLED": "false"},
        )
        path = os.pathsep.join([str(TOOLS_BIN), "/usr/bin", "/bin"])
        self._start(
            "argocd-application-controller",
            [
                str(TOOLS_BIN / "argocd-application-controller"),
                "--namespace",
                NAMESPACE,
                "--repo-server",
                f"127.0.0.1:{repo}",
                "--repo-server-plaintext",
                "--redis",
                f"127.0.0.1:{redis}",
                "--metrics-port",
                str(metrics[1]),
                "--status-processors",
                "4",
                "--operation-processors",
                "4",
                "--app-resync",
                "30",
                "--self-heal-timeout-seconds",
                "2",
                *(["--persist-resource-health"] if self.persist_resource_health else []),
                "--loglevel",
                "info",
                "--logformat",
                "text",
            ],
            {**base_env, "PATH": path},
        )
        self._start(
            "argocd-applicationset-controller",
            [
                str(TOOLS_BIN / "argocd-applicationset-controller"),
                "--namespace",
                NAMESPACE,
                "--argocd-repo-server",
                f"127.0.0.1:{repo}",
                "--repo-server-plaintext",
                "--metrics-addr",
                f"127.0.0.1:{metrics[2]}",
                "--probe-addr",
                f"127.0.0.1:{metrics[3]}",
                "--webhook-addr",
                f"127.0.0.1:{free_port()}",
                # RollingSync (a `progressive` environment's ApplicationSet) needs it.
                "--enable-progressive-syncs",
                "--loglevel",
                "info",
                "--logformat",
                "text",
            ],
            {**base_env, "PATH": path},
        )
        return {
            "redis-server": redis,
            "argocd-repo-server": repo,
            "argocd-application-controller": metrics[1],
            "argocd-applicationset-controller": metrics[3],
        }

    def _wait_listening(self, port: int, name: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process_name, process in self.processes.items():
                if process.poll() is not None:
                    raise AssertionError(
                        f"{process_name} exited with {process.returncode}{self.log_tail()}"
                    )
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.2)
        raise AssertionError(f"{name} not listening on {port} after {timeout}s{self.log_tail()}")

    def install(self) -> None:
        """CRDs, the namespace and the settings the controllers read: empty, then `settings`."""
        install_crds(
            self.cluster,
            [
                {"apiVersion": "argoproj.io/v1alpha1", "kind": kind, "metadata": {"name": "x"}}
                for kind in ARGOCD_KINDS
            ],
        )
        settings = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "argocd-cm", "namespace": NAMESPACE, "labels": PART_OF_ARGOCD},
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": "argocd-secret",
                    "namespace": NAMESPACE,
                    "labels": PART_OF_ARGOCD,
                },
            },
        ]
        for doc in [*settings, *self.settings]:
            self.apply(doc)

    def apply(self, *documents: dict[str, Any]) -> None:
        self.cluster.kubectl(
            "apply",
            "--server-side",
            "--field-manager=e2e-argocd",
            "-f",
            "-",
            stdin=yaml.safe_dump_all(list(documents), sort_keys=False),
        )

    def stop(self) -> None:
        stop_process_groups(list(self.processes.values()), timeout=15)
        self.processes.clear()

    # Reading Applications.

    def applications(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.cluster.get_json(
            "applications.argoproj.io", "-n", NAMESPACE
        )["items"]
        return items

    def refresh(self, names: list[str], kind: str = "hard") -> None:
        for name in names:
            self.cluster.kubectl(
                "annotate",
                "applications.argoproj.io",
                name,
                "-n",
                NAMESPACE,
                f"{REFRESH}={kind}",
                "--overwrite",
            )

    def sync(self, app: dict[str, Any]) -> None:
        """Start a sync as Argo CD's API server does (server/application Sync): write the
        Application's operation, with the sync options of its syncPolicy."""
        options = app["spec"].get("syncPolicy", {}).get("syncOptions", [])
        operation = {
            "operation": {
                "initiatedBy": {"username": "e2e"},
                "sync": {"syncStrategy": {"hook": {}}, "syncOptions": options},
            }
        }
        self.cluster.kubectl(
            "patch",
            "applications.argoproj.io",
            app["metadata"]["name"],
            "-n",
            NAMESPACE,
            "--type",
            "merge",
            "-p",
            json.dumps(operation),
        )


def health_checks(repo: Path) -> dict[str, Any]:
    """The rendered `argocd/argocd-cm.yaml` of `repo`: the Lua health checks of the kinds Argo
    CD cannot judge itself (emit/argocd/health_checks.py), as a user installs them."""
    cm: dict[str, Any] = yaml.safe_load((repo / "argocd" / "argocd-cm.yaml").read_text())
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "argocd-cm", cm["metadata"]
    assert cm["metadata"].get("namespace") == NAMESPACE, cm["metadata"]
    return cm


@contextlib.contextmanager
def running(
    cluster: Cluster,
    tmp_path: Path,
    settings: list[dict[str, Any]] | None = None,
    *,
    persist_resource_health: bool = False,
) -> Iterator[ArgoCD]:
    """Argo CD on `cluster` (state under `tmp_path`), stopped by PID afterwards. `settings`
    (e.g. `[health_checks(repo)]`) are in place before its controllers start;
    `persist_resource_health`: see `ArgoCD`."""
    from support import require_tools, unavailable

    require_tools(*ARGOCD_TOOLS, install="make argocd-tools")
    if not all((HACK_DIR / name).is_file() for name in HACK_WRAPPERS):
        unavailable(
            f"Argo CD's {', '.join(HACK_WRAPPERS)} missing in {HACK_DIR}: run `make argocd-tools`"
        )
    instance = ArgoCD(
        cluster=cluster,
        state=tmp_path / "argocd",
        settings=list(settings or []),
        persist_resource_health=persist_resource_health,
    )
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()
